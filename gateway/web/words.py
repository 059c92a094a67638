"""The messages of the code the web shares with the CLI, in the words of the page's forms.

The ledger and the job events word their errors for the command line (`--customer = ...`,
"has `shopwatt run` taken the start yet?"); the CLI keeps them as they are, and the page
shows them with its fields' labels and its own buttons instead, translated here only.
"""

from __future__ import annotations

import re

# A CLI option or a form field's name -> the label the page shows that field under.
LABELS = {
    "machine": "Machine",
    "job": "Job",
    "customer": "Customer",
    "order": "Order",
    "parts": "Good parts",
    "scrap": "Scrap",
    "at": "At (local time)",
    "member": "Member",
    "hours": "Hours (credits)",
    "price": "Price paid",
    "valid-until": "Valid until",
    "valid_until": "Valid until",
    "date": "Date",
    "role": "Role",
}
# Commands the CLI's messages point to -> where the page does the same.
COMMANDS = (
    (re.compile(r"`shopwatt job stop --machine ([^`\s]+)`"), r"the Stop button of \1 on the floor"),
    (re.compile(r"`shopwatt jobs`"), "the Jobs page"),
    (re.compile(r"add it with `shopwatt customer add`"), "new customers are added on the gateway"),
    (re.compile(r"`shopwatt run`"), "the gateway"),
)
# `--option` anywhere; a bare field name only where a message names a value (`job = ...`).
_OPTION = re.compile(r"(?<![\w-])--([a-z][a-z-]*)")
_FIELD = re.compile(rf"(^|: )({'|'.join(LABELS)}) = ")


def in_form_words(message: str) -> str:
    """The message with the page's field labels and buttons for the CLI's options and commands."""
    for pattern, words in COMMANDS:
        message = pattern.sub(words, message)
    message = _OPTION.sub(lambda m: LABELS.get(m[1], m[1].replace("-", " ").capitalize()), message)
    return _FIELD.sub(lambda m: f"{m[1]}{LABELS[m[2]]} = ", message)
