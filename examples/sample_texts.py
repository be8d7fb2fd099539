"""Invented texts of the demo's sample mail: subjects, sender names, mail bodies and .docx paragraphs.

People, counties, scenic spots and figures are invented. Only the prefecture names are real.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Sample:
    """Text of one sample message, with the .docx paragraphs (title first) in ``document`` when it has one."""

    subject: str
    sender_name: str
    mail_lines: list[str]
    document: list[str] = field(default_factory=list)

    @property
    def mail_text(self) -> str:
        """Plain-text mail body, lines joined with LF (encoders turn them into CRLF)."""
        return "\n".join(self.mail_lines) + "\n"

    @property
    def filename(self) -> str:
        """Attachment file name: the document's title plus .docx, as units usually name it."""
        return self.document[0] + ".docx"


# The office's reminder of 9 November. Sample 06 is an auto-reply to it and sample 07 returns one copy.
OFFICE_NOTICE_ID = "20261109140002.N1.zwxx@tourism.example.gov.cn"
OFFICE_NOTICE_SUBJECT = "关于报送11月份政务信息的提醒"

CHENGDU = Sample(
    subject="【工作动态】成都市发布首批夜间文旅消费集聚区",
    sender_name="成都市文广旅局",
    mail_lines=[
        "省旅游局办公室：",
        "　　现将我局工作动态信息《成都市发布首批夜间文旅消费集聚区》报上，请审阅。",
        "",
        "成都市文化广电旅游局信息科",
        "2026年11月3日",
    ],
    document=[
        "成都市发布首批夜间文旅消费集聚区",
        "11月2日，成都市文化广电旅游局联合市商务局公布首批12个市级夜间文旅消费集聚区名单，"
        "涵盖历史文化街区、滨水休闲带、文创园区和特色商圈等类型，引导夜间消费由“单点打卡”向“片区联动”转变。",
        "此次认定坚持“有场景、有业态、有服务”标准，重点考察夜间营业时长、文旅业态占比、公共交通接驳和安全保障等"
        "12项指标。入选集聚区平均夜间营业时间延长至23时，文旅类商户占比达到41%。",
        "为支持集聚区提档升级，成都市安排专项引导资金1500万元，对新增沉浸式演艺、非遗展演、夜间研学等项目给予补助，"
        "并协调公交、地铁在周末将末班车运营时间延长30分钟至60分钟。",
        "据抽样统计，10月份首批集聚区累计接待夜间游客286.4万人次，带动夜间消费9.7亿元，"
        "同比分别增长18.6%和15.2%。",
        "下一步，成都市将建立集聚区动态评估机制，每年开展一次复核，对服务质量下降、安全管理不到位的实行退出，"
        "推动夜间文旅消费持续健康发展。",
        "审核：邹明远　签发：贺文涛",
        "联系人：唐晓岚　电话：028-86120473",
    ],
)

LESHAN = Sample(
    subject="【工作动态】乐山市开通“三江游船”冬季夜航线路",
    sender_name="周晓雯",
    mail_lines=[
        "政务信息工作组办公室：",
        "　　现报送乐山市工作动态信息一则，请审阅。",
        "",
        "乐山市开通“三江游船”冬季夜航线路",
        "　　11月1日起，乐山市在城区三江交汇水域开通冬季夜航线路，每晚19时至21时30分发船4个班次，"
        "单程航行约50分钟。",
        "　　夜航线路串联沿江6处灯光景观节点，船上同步推出川剧折子戏、竹琴说唱等非遗展演。"
        "首周累计发船28班次，接待游客6320人次，平均上座率达到82%。",
        "　　乐山市文化广电旅游局会同海事、交通运输等部门制定夜航安全保障方案，"
        "落实船舶夜间航行、应急救援、客流限额等11项措施，确保夜航安全有序。",
        "审核：罗建平　签发：钟瑶",
        "联系人：周晓雯　电话：0833-2139608",
        "",
        "乐山市文化广电旅游局　周晓雯",
    ],
)

DIVISION = Sample(
    subject="[约稿]全省冬季旅游新业态培育取得阶段性成效",
    sender_name="钱卫东",
    mail_lines=[
        "办公室：",
        "您好！按照约稿要求，现将产业处稿件发来，详见附件，请审阅。",
        "",
        "钱卫东",
        "省旅游局产业处",
        "电话：028-86731025",
    ],
    document=[
        "全省冬季旅游新业态培育取得阶段性成效",
        "今年以来，省旅游局产业处围绕冬季旅游供给短板，组织开展冬季旅游新业态培育行动，"
        "重点支持冰雪运动、温泉康养、避寒度假和夜间文旅四类业态发展，全省新增冬季旅游项目64个，完成投资38.2亿元。",
        "一是摸清底数、分类施策。会同各市（州）对冬季旅游资源开展摸底调查，建立重点项目库，"
        "按照“建成一批、在建一批、储备一批”分类推进，入库项目达到127个。",
        "二是强化要素保障。协调金融机构推出“冬游贷”专项产品，累计为41家文旅企业发放贷款5.6亿元；"
        "推动12个冬季旅游项目纳入省级重点项目清单，在用地、用电方面给予倾斜。",
        "三是培育市场主体。举办冬季旅游产品招商推介会2场，签约项目19个，协议金额73亿元；"
        "遴选发布冬季旅游精品线路10条，引导旅行社组团开发。",
        "下一步，产业处将加强项目调度，推动已签约项目尽快开工，力争年底前全省新增冬季旅游项目80个以上。",
        "审核：许志刚　签发：马立群",
        "联系人：钱卫东　电话：028-86731025",
    ],
)

HOLIDAY = Sample(
    subject="【假日综述】阿坝州11月首个周末假日旅游市场综述",
    sender_name="泽仁拉姆",
    mail_lines=[
        "阿坝州11月首个周末假日旅游市场综述",
        "　　11月7日至8日，阿坝州各景区迎来入冬后首个客流小高峰。据全州18家重点监测景区统计，"
        "两天共接待游客9.86万人次，实现门票收入612万元，同比分别增长12.4%和9.8%。",
        "　　从客源结构看，省内游客占比71%，自驾游客占比超过六成；"
        "冰雪观光、温泉康养和民俗体验类产品预订量较上月同期明显增长。",
        "　　假日期间，全州文旅系统共出动检查人员326人次，检查旅游经营单位148家，"
        "未发生旅游安全事故和重大旅游投诉。州文旅局提前发布道路结冰和景区限流提示，引导游客错峰出行。",
        "",
        "发自我的iPhone",
    ],
)

UNKNOWN = Sample(
    subject="工作动态：沐溪县举办首届茶旅文化节",
    sender_name="沐溪县文旅局",
    mail_lines=[
        "您好，附件是我县工作动态信息，请查收。",
        "",
        "沐溪县文化旅游局　冉小燕",
    ],
    document=[
        "沐溪县举办首届茶旅文化节",
        "11月6日至8日，乐山市沐溪县首届茶旅文化节在云雾岭茶园举行。文化节设置采茶制茶体验、茶艺展演、"
        "茶山徒步和农特产品展销等活动，吸引周边游客2.3万人次。",
        "活动期间，沐溪县发布3条茶旅融合精品线路，17家茶企和民宿联合推出“住茶乡、品新茶”套餐，"
        "实现茶叶及农特产品销售收入436万元。",
        "下一步，沐溪县将完善茶园观光步道、停车场等配套设施，推动茶产业与乡村旅游深度融合。",
        "审核：丁海涛　签发：龚建华",
        "联系人：冉小燕　电话：0833-5102286",
    ],
)

AUTO_REPLY = Sample(
    subject="自动回复：" + OFFICE_NOTICE_SUBJECT,
    sender_name="省旅游局促进中心",
    mail_lines=[
        "您好！您的邮件已收到。",
        "本人11月9日至13日在省外参加旅游推介活动，期间不能及时查看邮件，急事请致电028-86735510。谢谢！",
        "",
        "促进中心综合科",
    ],
)

BOUNCE_NOTIFICATION = """This is the mail system at host mx.tourism.example.gov.cn.

The message named below could not be delivered to one of its recipients.
The receiving server rejected the address with the reply below.

<lsyl@example.gov.cn>: host mail.example.gov.cn[198.51.100.10] said: 550 5.1.1
    <lsyl@example.gov.cn>: Recipient address rejected: User unknown in local
    recipient table (in reply to RCPT TO command)

邮件未能投递：收件人地址 lsyl@example.gov.cn 不存在，请核对后重新发送。
"""
