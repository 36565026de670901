"""The Simplified Chinese catalogues: every extracted string is translated, and the committed .mo files are
what the .po files compile to (``make messages`` does both)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from django.utils import translation

LOCALE = Path(__file__).resolve().parents[2] / "locale" / "zh_Hans" / "LC_MESSAGES"
ENTRY = re.compile(
    r'^msgid ((?:".*"\n)+)(?:msgid_plural ((?:".*"\n)+))?((?:msgstr(?:\[\d\])? (?:".*"\n)+)+)', re.M
)
SAME_IN_BOTH = {"API", "v%(n)s"}


def entries(domain: str) -> list[tuple[str, str]]:
    text = (LOCALE / f"{domain}.po").read_text()
    assert "#, fuzzy" not in text.split("\n\n", 1)[1], "a fuzzy entry is not a translation"

    def joined(block: str) -> str:
        return (
            "".join(re.findall(r'"(.*)"', block)).encode().decode("unicode_escape").encode("latin1").decode()
        )

    found = []
    for match in ENTRY.finditer(text):
        msgid, translated = joined(match.group(1)), joined(match.group(3).split("msgstr", 2)[1])
        if msgid:  # the header
            found.append((msgid, translated))
    return found


@pytest.mark.parametrize("domain", ["django", "djangojs"])
def test_every_string_is_translated(domain):
    found = entries(domain)
    assert len(found) > 30
    untranslated = [
        msgid for msgid, text in found if not text or (text == msgid and msgid not in SAME_IN_BOTH)
    ]
    assert not untranslated


@pytest.mark.parametrize("domain", ["django", "djangojs"])
def test_the_compiled_catalogue_is_current(domain, tmp_path):
    if shutil.which("msgfmt") is None:
        pytest.fail("msgfmt (GNU gettext) is needed: apt-get install gettext")
    compiled = tmp_path / f"{domain}.mo"
    subprocess.run(["msgfmt", "--check-format", "-o", compiled, LOCALE / f"{domain}.po"], check=True)
    assert compiled.read_bytes() == (LOCALE / f"{domain}.mo").read_bytes(), "run make messages"


def test_a_domain_error_speaks_the_request_language():
    from runs.services import RunConflict

    with translation.override("zh-hans"):
        assert str(RunConflict().message) == "此会话中已有一个运行在进行。"
    with translation.override("en"):
        assert str(RunConflict().message) == "A run is already active in this session."


@pytest.mark.parametrize(
    ("accept", "language"),
    [("zh-CN", "zh-hans"), ("zh", "zh-hans"), ("zh-TW", "zh-hans"), ("en-GB", "en"), ("fr", "en")],
)
def test_accept_language_picks_chinese_or_english(client, accept, language):
    response = client.get("/accounts/login/", HTTP_ACCEPT_LANGUAGE=accept)
    assert response["Content-Language"] == language
