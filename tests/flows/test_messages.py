"""Channel-neutral replies: limits are checked when a message is built; long lists page."""

import pytest

from statehq.flows import Buttons, MessageLimitError, Option, OptionList, Text
from statehq.flows.messages import MAX_ROWS, page_of


def rows(n: int) -> list[Option]:
    return [Option(f"r{i}", f"Row {i}") for i in range(n)]


def test_buttons_take_one_to_three() -> None:
    assert len(Buttons("Pick", tuple(rows(3))).options) == 3
    with pytest.raises(MessageLimitError, match="1 to 3 buttons, not 4"):
        Buttons("Pick", tuple(rows(4)))
    with pytest.raises(MessageLimitError, match="not 0"):
        Buttons("Pick", ())


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: Buttons("x", (Option("a", "A title of 21 chars!!"),)), "limit is 20"),
        (lambda: Option("a", "x" * 25), "limit is 24"),
        (lambda: Option("a", "ok", "d" * 73), "limit is 72"),
        (lambda: Option("", "ok"), "option id is empty"),
        (lambda: Text(""), "text message is empty"),
        (lambda: Text("x" * 4097), "limit is 4096"),
        (lambda: Buttons("b" * 1025, (Option("a", "A"),)), "limit is 1024"),
        (lambda: OptionList("x", tuple(rows(11))), "1 to 10 rows in total, not 11"),
        (lambda: OptionList("x", (Option("a", "A"), Option("a", "B"))), "unique"),
        (lambda: OptionList("x", tuple(rows(2)), button="b" * 21), "limit is 20"),
    ],
)
def test_limits_are_checked_when_built(build: object, match: str) -> None:
    with pytest.raises(MessageLimitError, match=match):
        build()  # type: ignore[operator]


def test_a_short_list_is_one_page() -> None:
    listed = OptionList.page("Pick", rows(9), footer=(Option("back", "Back"),))
    assert [o.id for o in listed.options] == [*(f"r{i}" for i in range(9)), "back"]


def test_a_long_list_pages_within_ten_rows_navigation_included() -> None:
    everything = rows(25)
    seen: list[str] = []
    page, pages = 0, 0
    while True:
        listed = OptionList.page("Pick", everything, page, footer=(Option("back", "Back"),))
        assert len(listed.options) <= MAX_ROWS
        assert listed.options[-1].id == "back"
        ids = [o.id for o in listed.options]
        seen += [i for i in ids if i.startswith("r")]
        pages += 1
        following = [page_of(i) for i in ids if page_of(i) is not None and page_of(i) == page + 1]
        if page > 0:
            assert page_of(ids[0]) == page - 1  # "Previous" leads back
        if not following:
            break
        page += 1
    assert seen == [o.id for o in everything]  # every row exactly once, in order
    assert pages == 4  # 7 rows per page with previous, more and the footer


def test_a_page_past_the_end_shows_the_last() -> None:
    last = OptionList.page("Pick", rows(25), 99)
    assert last.options[-1].id == "r24"
