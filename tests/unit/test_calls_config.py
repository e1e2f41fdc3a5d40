"""The [call], [call.announcements] and [rating] keys: defaults, and every bad value
is refused naming its key."""

from __future__ import annotations

import pytest

from scp.config import ConfigError, load_config, parse_config
from scp.service.calls import CallSettings


def test_example_config_and_settings() -> None:
    cfg = load_config()
    s = CallSettings.from_config(cfg)
    assert s.not_reachable_causes == {18, 19, 20, 27, 31} and s.no_answer_timer == 20
    assert s.ann["menu"] == 1001 and s.scf_id == bytes.fromhex("6831080000")
    assert cfg.rating.hmt_prefixes == ("852", "853", "886")


@pytest.mark.parametrize(
    "text,key",
    [
        ("[call]\nno_answer_timer = 0", "call.no_answer_timer"),
        ("[call]\nnot_reachable_causes = [17]", "call.not_reachable_causes"),
        ("[call]\nnot_reachable_causes = [200]", "call.not_reachable_causes[0]"),
        ("[call]\nivr_called_party = 'x'", "call.ivr_called_party"),
        ("[call]\ndigit_callback = '12'", "call.digit_callback"),
        ("[call]\ndigit_voicemail = '1'", "call.digit_callback"),
        ("[call]\ncallback_fee = 'abc'", "call.callback_fee"),
        ("[call]\nvoicemail_retrieval = '12a'", "call.voicemail_retrieval"),
        ("[call.announcements]\nmenu = -1", "call.announcements.menu"),
        ("[call.announcements]\nmenux = 1", "call.announcements.menux"),
        ("[rating]\nlocal_prefixes = ['86a']", "rating.local_prefixes[0]"),
        ("[rating]\ncountry_code = '8686'", "rating.country_code"),
    ],
)
def test_bad_values_name_the_key(text: str, key: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse_config(text)
    assert e.value.key == key
