"""Subject prefixes, category tags and category keywords."""

from __future__ import annotations

import pytest

from parsers.subjects import classify_category, find_subject_tag, strip_prefixes, strip_subject


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("回复：【约稿】关于报送信息的通知", "【约稿】关于报送信息的通知"),
        ("答复: 【约稿】通知", "【约稿】通知"),
        ("RE: [约稿]通知", "[约稿]通知"),
        ("Fw: 转发：Re: 标题", "标题"),
        ("转发: 【工作动态】标题", "【工作动态】标题"),
        ("无前缀标题", "无前缀标题"),
    ],
)
def test_strip_prefixes(subject: str, expected: str) -> None:
    assert strip_prefixes(subject) == expected


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("【工作动态】成都启动冬季消费季", "成都启动冬季消费季"),
        ("[工作动态]遂宁开展专项整治", "遂宁开展专项整治"),
        ("工作动态：泸州开展大检查", "泸州开展大检查"),
        ("经济运行分析-2026年1—10月分析", "2026年1—10月分析"),
        ("工作动态—省旅游局部署整治", "省旅游局部署整治"),
        ("工作动态 省旅游学校获佳绩", "省旅游学校获佳绩"),
        ("【重大突发事件】紧急：关于闭园的紧急报告", "关于闭园的紧急报告"),
        ("回复：【约稿】通知", "通知"),
        ("", ""),
    ],
)
def test_strip_subject(subject: str, expected: str) -> None:
    assert strip_subject(subject) == expected


def test_subject_tag_after_prefix() -> None:
    assert find_subject_tag("回复：[约稿]关于报送的通知") == "约稿"


def test_subject_without_tag() -> None:
    assert find_subject_tag("报送信息一则") is None


@pytest.mark.parametrize(
    ("subject", "title", "expected"),
    [
        ("【工作动态】标题", "", "工作动态"),
        ("[约稿]关于报送的通知", "", "约稿信息"),
        ("回复：【约稿】通知", "", "约稿信息"),
        ("【突发】关于游客走失的情况报告", "", "重大突发事件"),
        ("【假日综述】国庆假日旅游市场综述", "", "假日综述"),
        ("[新闻通气会]系列活动材料", "", "新闻通气会"),
        ("经济运行分析-全省分析", "", "经济运行分析"),
        ("约稿信息：巴中打好冬游组合拳", "", "约稿信息"),
        ("报送信息一则", "雅安开展大检查", "工作动态"),
        ("关于报送的通知", "甘孜国庆假日旅游市场综述", "假日综述"),
        ("", "", "工作动态"),
    ],
)
def test_classify_category(subject: str, title: str, expected: str) -> None:
    assert classify_category(subject, title) == expected
