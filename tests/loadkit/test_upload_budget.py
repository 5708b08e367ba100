"""The run's upload ledger (loadkit.contract.upload_budget): priority order, skips with reasons."""

from __future__ import annotations

from pathlib import Path

from loadkit.contract.upload_budget import UploadLedger

NEEDS = {
    "concurrent_uploads": 10,
    "rate_limit_enforcement[upload_limit]": 11,
    "upload_trust_probe": 8,
    "event_loop_probe": 8,
    "limiter_semantics_probe[extract]": 1,
}


def test_a_budget_keyed_by_account_is_never_shared(tmp_path: Path) -> None:
    """Against a per-account limit (not scarce) every test gets its uploads."""
    ledger = UploadLedger(tmp_path / "u.json")
    ledger.plan(NEEDS, scarce=False, limit=10)
    assert all(ledger.claim(name, need) is None for name, need in NEEDS.items())


def test_an_address_budget_goes_in_priority_order_and_skips_say_why(tmp_path: Path) -> None:
    """File order runs concurrent_uploads first, but the upload-trust probe comes first in the
    order: it keeps its 8 of 10, the extract probe its 1; the rest skip naming who has them."""
    ledger = UploadLedger(tmp_path / "u.json")
    ledger.plan(NEEDS, scarce=True, limit=10)
    first = ledger.claim("concurrent_uploads", 10)
    assert first and "kept for upload_trust_probe (8)" in first
    limit_test = ledger.claim("rate_limit_enforcement[upload_limit]", 11)
    assert limit_test and "upload_trust_probe" in limit_test  # spends all: must wait its turn
    assert ledger.claim("upload_trust_probe", 8) is None
    assert ledger.claim("limiter_semantics_probe[extract]", 1) is None
    spent = ledger.claim("event_loop_probe", 8)
    assert spent and "spent: 9 of 10 used by upload_trust_probe" in spent


def test_the_ledger_is_shared_by_processes_of_the_run(tmp_path: Path) -> None:
    """A second ledger on the same file (another process) sees what the first one spent."""
    UploadLedger(tmp_path / "u.json").plan({"concurrent_uploads": 10}, scarce=True, limit=10)
    assert UploadLedger(tmp_path / "u.json").claim("concurrent_uploads", 10) is None
    late = UploadLedger(tmp_path / "u.json").claim("upload_trust_probe", 8)
    assert late and "spent: 10 of 10 used by concurrent_uploads" in late
