"""The py-spy recording parser, aggregator and flame graph, on stacks in py-spy's raw format."""

from loadkit.report import profile_stacks as ps
from loadkit.report.flamegraph import svg

SPINE = 'process 7:"python -m reference_backend";<module> (reference_backend/__main__.py:89)'
ROUTE = "run_endpoint_function (fastapi/routing.py:381);list_sessions (app/routes.py:64)"
RAW = "\n".join(
    [
        f"{SPINE};{ROUTE};session_list_json (app/schemas.py:198);malloc (libc.so.6) 6",
        f"{SPINE};{ROUTE};0x7f01 (pydantic_core/_pydantic_core.so) 2",
        f"{SPINE};WorkerThread.run (anyio/_backends/_asyncio.py:1124);_verify_sync (app/s.py:41);"
        "blowfish::Blowfish$LT$T$GT$::encrypt::hdbf9790f54e8d50c (bcrypt/_bcrypt.abi3.so) 10",
        f"{SPINE};uv_run (core.c:464);uv__io_poll (linux.c:1452);epoll_pwait (libc.so.6) 30",
        "not a stack line",
    ]
)


def test_frames_drop_line_numbers_and_tidy_rust_symbols():
    """A frame keeps function and file; Rust hashes and $LT$/$GT$ escapes are removed."""
    frame = ps.parse_frame("blowfish::Blowfish$LT$T$GT$::encrypt::hdbf9790f54e8d50c (b/_b.so)")
    assert frame == ps.Frame("blowfish::Blowfish<T>::encrypt", "b/_b.so")
    assert ps.parse_frame("f (a/b.py:12)").where == "a/b.py"
    assert ps.parse_frame("0x7f01 (lib.so)").label == "native code (lib.so)"


def test_idle_samples_are_counted_apart_and_shares_use_busy_samples():
    """Waiting threads (epoll) are idle; shares are of the 18 busy samples, not of 48."""
    profile = ps.aggregate(ps.parse_raw(RAW))
    assert (profile.samples, profile.idle_samples) == (18, 30)
    top = profile.top("own", 3)
    assert top[0] == ("blowfish::Blowfish<T>::encrypt (bcrypt/_bcrypt.abi3.so)", 10, 55.6)
    assert ("session_list_json (app/schemas.py)", 6, 33.3) in top  # malloc passed over


def test_groups_follow_the_handler_frame_or_the_thread_pool_job():
    """A stack under run_endpoint_function goes to its handler; a worker thread's to its job."""
    groups = ps.summary(ps.aggregate(ps.parse_raw(RAW)))["groups"]
    by_name = {g["group"]: g for g in groups}
    assert by_name["handler list_sessions (app/routes.py)"]["samples"] == 8
    assert by_name["thread pool: _verify_sync (app/s.py)"]["samples"] == 10
    totals = dict(
        (n, c) for n, c, _ in by_name["handler list_sessions (app/routes.py)"]["top_total"]
    )
    assert totals["list_sessions (app/routes.py)"] == 8
    assert "<module> (reference_backend/__main__.py)" not in totals


def test_flame_graph_is_svg_with_a_box_per_busy_frame():
    """The SVG names the busy frames with their counts and leaves the idle stack out."""
    text = svg(ps.parse_raw(RAW))
    assert text.startswith("<svg") and text.endswith("</svg>")
    assert "18 busy samples" in text
    assert "blowfish::Blowfish&lt;T&gt;::encrypt (bcrypt/_bcrypt.abi3.so): 10 samples" in text
    assert "epoll_pwait" not in text
