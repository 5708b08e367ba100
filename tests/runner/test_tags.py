"""loadkit.contract.tags: the tags come from the locustfile's source; unknown ones are named."""

from __future__ import annotations

from pathlib import Path

from loadkit.contract import tags


def test_real_locustfile_tags_use_underscores() -> None:
    """The tags read from load_test.py are the real ones (rate_limit, db_pool), not hyphenated."""
    known = tags.known_tags()
    assert {"rate_limit", "db_pool", "realistic", "probes"} <= set(known)
    assert not [t for t in known if "-" in t]


def test_a_persona_imported_from_loadkit_brings_its_tags() -> None:
    """DefectProber lives in loadkit/locust_plugin/defect_prober.py: its ``probes`` tag is known
    because load_test.py imports it, and the runner accepts ``--tags probes``."""
    assert "probes" in tags.known_tags()
    assert tags.unknown_tags_problem(["probes", "realistic"], tags.known_tags()) is None


def test_tags_are_read_from_any_decorator_form(tmp_path: Path) -> None:
    """@tag and @locust.tag with several names are all found, each once, sorted."""
    file = tmp_path / "lf.py"
    file.write_text(
        "import locust\nfrom locust import tag\n"
        "@tag('b', 'a')\ndef f(): pass\n@locust.tag('c', 'a')\ndef g(): pass\n"
    )
    assert tags.known_tags(file) == ["a", "b", "c"]


def test_unknown_tag_is_one_line_listing_the_valid_ones() -> None:
    """A hyphenated tag is refused with every valid tag listed; known tags pass."""
    problem = tags.unknown_tags_problem(
        tags.split_tags("realistic,rate-limit"), ["rate_limit", "realistic"]
    )
    assert problem == "unknown tag rate-limit; valid tags: rate_limit, realistic"
    assert "\n" not in problem
    assert tags.unknown_tags_problem(["rate_limit"], ["rate_limit"]) is None
