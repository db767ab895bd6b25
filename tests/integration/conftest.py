"""pytest fixtures: a fresh httpd server root per test, torn down by PID, with
the error log checked for unexpected [warn]/[error] lines afterwards."""

import os
import shutil
import tempfile

import pytest

import harness

# Test roots must be readable by the httpd and php-fpm workers (www-data),
# so not under pytest's 0700 tmp_path.
TEST_ROOT_BASE = "/tmp/fpmr-tests"


@pytest.fixture
def server_root(request):
    os.makedirs(TEST_ROOT_BASE, exist_ok=True)
    os.chmod(TEST_ROOT_BASE, 0o755)
    root = tempfile.mkdtemp(prefix=request.node.name[:40] + "-", dir=TEST_ROOT_BASE)
    os.chmod(root, 0o755)
    yield root
    if not request.node.rep_call_failed and not os.environ.get('FPMR_KEEP_ROOT'):
        shutil.rmtree(root, ignore_errors=True)


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "call":
        item.rep_call_failed = rep.failed


def pytest_runtest_setup(item):
    item.rep_call_failed = True


@pytest.fixture
def httpd(server_root, request):
    server = harness.Httpd(server_root)
    shutil.copytree(harness.PHP_DIR, os.path.join(server_root, "htdocs"), dirs_exist_ok=True)
    yield server
    server.cleanup()
    unexpected = server.unexpected_log_lines()
    assert not unexpected, "unexpected lines in the error log:\n" + "\n".join(unexpected[:20])
