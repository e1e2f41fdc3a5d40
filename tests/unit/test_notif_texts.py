"""Pure notification decisions: templates, numbers, grouping, digests and ads."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from pathlib import Path

import pytest

from scp.codecs.sms import segment_count
from scp.service.notifications import (
    REQUIRED_KEYS,
    CallerGroup,
    PendingCall,
    TemplateError,
    ad_matches,
    append_ad,
    busy_text,
    digest_text,
    display_number,
    group_by_caller,
    load_templates,
    missed_call_texts,
    render,
)
from scp.service.provisioning import AdRule

# Fixed times only: the same on any day and in any time zone (tests/dates.py).
pytestmark = pytest.mark.usefixtures("any_day")

TZ = zoneinfo.ZoneInfo("Asia/Shanghai")
ZH = load_templates("zh")
EN = load_templates("en")
T = dt.datetime(2026, 11, 25, 1, 5, tzinfo=dt.UTC)  # 09:05 in Beijing


def group(caller: str | None, n: int, at: dt.datetime = T) -> CallerGroup:
    return CallerGroup(caller, tuple(range(1, n + 1)), at, at)


@pytest.mark.parametrize(
    ("e164", "shown"),
    [
        ("8613912345678", "13912345678"),  # mobile: no trunk prefix
        ("861012345678", "01012345678"),  # Beijing fixed line
        ("85291234567", "0085291234567"),  # Hong Kong: international form
        (None, "未知号码"),
    ],
)
def test_numbers_as_the_subscriber_dials_them(e164: str | None, shown: str) -> None:
    assert display_number(e164, ZH) == shown


def test_exact_texts_of_the_service_description() -> None:
    assert missed_call_texts([group("8613912345678", 3)], ZH, TZ) == [
        "您好,用户13912345678于11月25日9时呼叫您3次,请回电!"
    ]
    assert render(ZH["callback"], callee="13912345678") == "您好,用户13912345678已可达,请及时联系。"
    assert render(ZH["receipt"], dst="13700000001") == "您发给13700000001的短信已送达。"
    assert busy_text("8613700000001", 3, T, ZH, TZ) == (
        "您好,用户13700000001于11月25日9时呼叫您3次,您正在通话中,请回电!"
    )


def test_english_and_digest() -> None:
    assert missed_call_texts([group("8613912345678", 1)], EN, TZ) == [
        "13912345678 called you 1 time(s), last at 9:05 on 25/11. Please call back."
    ]
    assert digest_text([group("8613912345678", 2), group(None, 1)], ZH, TZ) == (
        "您好,您有3个未接来电:13912345678(11月25日9时2次);未知号码(11月25日9时1次),请回电!"
    )


def test_group_by_caller_keeps_first_call_order_and_counts() -> None:
    calls = [
        PendingCall(1, "a", T, "not-reachable"),
        PendingCall(2, "b", T + dt.timedelta(minutes=1), "not-reachable"),
        PendingCall(3, "a", T + dt.timedelta(minutes=2), "busy"),
        PendingCall(4, None, T + dt.timedelta(minutes=3), "no-answer"),
    ]
    groups = group_by_caller(reversed(calls))
    assert [(g.caller, g.ids, g.count) for g in groups] == [
        ("a", (1, 3), 2),
        ("b", (2,), 1),
        (None, (4,), 1),
    ]
    assert groups[0].last_at == T + dt.timedelta(minutes=2)


def test_template_files_complete_and_strict(tmp_path: Path) -> None:
    for t in (ZH, EN):
        assert set(REQUIRED_KEYS) <= set(t.texts)
    (tmp_path / "zh.toml").write_text('missed_call = "x"\n', encoding="utf-8")
    with pytest.raises(TemplateError, match="missing"):
        load_templates("zh", str(tmp_path))
    with pytest.raises(TemplateError):
        render("{nope}", caller="x")


def ad(text: str, **kw: object) -> AdRule:
    base: dict[str, object] = dict(
        id=1,
        text=text,
        window_start=dt.time(0),
        window_end=None,
        caller_prefixes=(),
        user_groups=(),
        priority=0,
        valid_from=T - dt.timedelta(days=1),
        valid_until=None,
    )
    base.update(kw)
    return AdRule(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("rule", "caller", "group_", "ok"),
    [
        (ad("x"), "8613900000000", "default", True),
        (ad("x", window_start=dt.time(8), window_end=dt.time(10)), None, "g", True),  # 09:05 local
        (ad("x", window_start=dt.time(10), window_end=dt.time(12)), None, "g", False),
        (ad("x", window_start=dt.time(22), window_end=dt.time(9, 30)), None, "g", True),  # midnight
        (ad("x", window_start=dt.time(22), window_end=dt.time(9)), None, "g", False),
        (ad("x", caller_prefixes=("139",)), "8613912345678", "g", True),  # national form
        (ad("x", caller_prefixes=("86139",)), "8613912345678", "g", True),  # E.164
        (ad("x", caller_prefixes=("138",)), "8613912345678", "g", False),
        (ad("x", caller_prefixes=("139",)), None, "g", False),
        (ad("x", user_groups=("vip",)), None, "vip", True),
        (ad("x", user_groups=("vip",)), None, "default", False),
        (ad("x", valid_from=T + dt.timedelta(seconds=1)), None, "g", False),
        (ad("x", valid_until=T), None, "g", False),
    ],
)
def test_ad_rules(rule: AdRule, caller: str | None, group_: str, ok: bool) -> None:
    assert ad_matches(rule, at=T, tz=TZ, caller=caller, user_group=group_) is ok


def test_ad_only_within_the_segment_budget_core_never_cut() -> None:
    core = missed_call_texts([group("8613912345678", 3)], ZH, TZ)[0]
    small, big = ad("【广告】回电优惠", id=2, priority=1), ad("长" * 50, id=3, priority=9)
    kw = dict(separator="", at=T, tz=TZ, caller="8613912345678", user_group="default")
    out = append_ad(core, [small, big], budget=1, **kw)  # type: ignore[arg-type]
    assert out == core + "【广告】回电优惠" and segment_count(out) == 1
    assert append_ad(core, [big], budget=2, **kw) == core + "长" * 50  # type: ignore[arg-type]
    assert append_ad(core, [small], budget=0, **kw) == core  # type: ignore[arg-type]
    long_core = "呼" * 100  # already two segments: no ad, nothing cut
    assert append_ad(long_core, [small], budget=1, **kw) == long_core  # type: ignore[arg-type]


def test_fuzz_ads_never_cut_the_core_nor_exceed_the_budget() -> None:
    import random

    rng = random.Random(66)
    alphabet = "abc XYZ 0123456789您好用户呼叫请回电{}€[]^~"
    for _round in range(10_000):
        core = "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 200)))
        ads = [
            ad(
                "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 80))),
                id=j,
                priority=rng.randrange(5),
                user_groups=rng.choice([(), ("vip",)]),
            )
            for j in range(rng.randrange(0, 4))
        ]
        budget = rng.randrange(0, 4)
        out = append_ad(
            core,
            ads,
            budget=budget,
            separator=rng.choice(["", " "]),
            at=T,
            tz=TZ,
            caller=rng.choice([None, "8613912345678"]),
            user_group=rng.choice(["vip", "default"]),
        )
        assert out.startswith(core)
        assert out == core or segment_count(out) <= budget
