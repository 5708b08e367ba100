"""test_large_uploads against the reference backend (the suite in a subprocess, real sockets): the
bundled backend passes with every figure in its report; a server that reads whole bodies into
memory (UPLOAD_BUFFERING=whole-body) is told apart by the RSS figure and fails."""

SELECTION = ["pytest_load_test.py", "-k", "large_uploads", "--profile", "ci"]
REPORT = "large_uploads.json"


def test_bundled_backend_passes_with_the_figures_in_its_report(run_suite):
    """Against the bundled backend: every upload (>= 10 MB) is sent whole and processed; the report
    has the sizes, MB/s, response and processed times, the transaction, the server's RSS while
    streaming (growth under the limit), disk growth of at least the bytes stored, and a 413
    mid-body from the second backend with the client stopping early."""
    run = run_suite(*SELECTION)
    assert run.returncode == 0, run.output[-3000:]
    report = run.reports[REPORT]
    size, n = report["parameters"]["upload_size_bytes"], report["parameters"]["users"]
    assert size >= 10_000_000 and report["total_requests"] == n
    block = report["large_uploads"]
    for row in block["uploads"]:
        assert row["status"] == 200 and row["sent_bytes"] == row["body_bytes"] > size
        assert row["mb_per_s"] > 0 and row["response_s"] > 0
        assert row["final_status"] == "processed" and row["to_processed_s"] > 0
    assert block["total"]["sent_bytes"] == sum(r["body_bytes"] for r in block["uploads"])
    transaction = report["transactions"]["upload_to_processed"]
    assert transaction["processed"] == n and transaction["timing"] == "server"
    assert transaction["response_time_p95_ms"] >= transaction["response_time_p50_ms"] > 0
    assert block["server_rss_streaming"]["growth_mb"] < n * size / 1e6 / 2
    assert block["disk"]["grown_bytes"] >= n * size
    oversize = block["oversize"]
    assert oversize["status"] == 413 and oversize["stopped_early"] is True
    assert oversize["max_upload_bytes"] <= oversize["sent_bytes"] < oversize["body_bytes"] / 2


def test_whole_body_server_is_told_apart_by_rss(planted, run_suite):
    """UPLOAD_BUFFERING=whole-body: the server's RSS grows by more than half the bytes in flight
    while the bodies stream, the RSS limit fails and so does the test; on a --host target the disk
    and the lowered-limit part are unavailable, each with its reason."""
    run = run_suite(*SELECTION, *planted(UPLOAD_BUFFERING="whole-body"))
    assert run.returncode == 1, run.output[-3000:]
    assert "server_rss_growth_streaming_mb" in run.output, run.output[-3000:]
    report = run.reports[REPORT]
    in_flight_mb = report["parameters"]["users"] * report["parameters"]["upload_size_bytes"] / 1e6
    assert report["large_uploads"]["server_rss_streaming"]["growth_mb"] > in_flight_mb / 2
    failed = [t["metric"] for t in report["thresholds"] if not t["passed"]]
    assert failed == ["server_rss_growth_streaming_mb"]
    assert "not started by this run" in report["large_uploads"]["disk"]["reason"]
    assert "cannot be lowered" in report["large_uploads"]["oversize"]["skipped"]
