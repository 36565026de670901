import pytest

from tests.executor_support import ExecutorProcess, executor_fixture

executor_server = pytest.fixture(scope="session")(executor_fixture)


@pytest.fixture
def executor(executor_server: ExecutorProcess):
    """The shared executor process, with every injected fault cleared after the test."""
    yield executor_server
    executor_server.clear_faults()
