"""Steps the browser tests share: posting a form, reading the admin's messages."""

from __future__ import annotations


def submit(page, selector: str) -> None:
    """Click something that posts a form, and wait for the page that answers."""
    with page.expect_navigation():
        page.click(selector)


def messages(page) -> list[str]:
    return [text.strip() for text in page.locator("ul.messagelist li").all_inner_texts()]
