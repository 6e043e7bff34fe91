"""Fixtures under cloture's pytest runner (`pytest --cloture-runner`): each execution sets its fixtures up
and tears them down, whatever their scope, so no execution sees another's state. The test passes in every
execution only then (and in a plain pytest run)."""
import pytest

EVENTS = []


@pytest.fixture(scope="session")
def shared():
    EVENTS.append("session up")
    yield []
    EVENTS.append("session down")


@pytest.fixture
def basket(shared):
    EVENTS.append("basket up")
    yield shared
    EVENTS.append("basket down")


def test_every_fixture_is_new_in_each_execution(basket):
    assert basket == [], f"a fixture kept what an earlier execution put in it: {basket}"
    basket.append("this execution's")
    for scope in ("session", "basket"):
        ups, downs = EVENTS.count(f"{scope} up"), EVENTS.count(f"{scope} down")
        assert ups == downs + 1, f"{scope}: set up {ups} times, torn down {downs} times"
