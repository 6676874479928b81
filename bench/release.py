"""Worker processes released together, so a benchmark times their work and not their
start-up: each child prints `ready` once it is set up, waits for `go` on stdin, works,
then prints one line of result."""

import signal
import subprocess
import time


def released_together(argv: list[str], count: int) -> tuple[float, list[str]]:
    """Start `count` children running `argv`, release them together once all are ready;
    returns the seconds from the release to the last result, and each child's result."""
    children = [
        subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for _ in range(count)
    ]
    try:
        for child in children:
            assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        started = time.perf_counter()
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        results = [child.stdout.readline().strip() for child in children if child.stdout]
        return time.perf_counter() - started, results
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
            child.wait(timeout=30)
