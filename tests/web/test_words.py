"""The CLI's messages as the web shows them: the form's labels, the page's buttons."""

from gateway.web.words import in_form_words


def test_options_commands_and_field_names_become_the_pages_words() -> None:
    said = in_form_words(
        "--machine = 'mill': no job running as far as the gateway knows (has `shopwatt run` "
        "taken the start yet?)"
    )
    assert said == (
        "Machine = 'mill': no job running as far as the gateway knows (has the gateway taken "
        "the start yet?)"
    )
    assert in_form_words("parts = '1x': a whole number of parts") == (
        "Good parts = '1x': a whole number of parts"
    )
    assert in_form_words("job 'W-9' is not in the ledger (see `shopwatt jobs`)") == (
        "job 'W-9' is not in the ledger (see the Jobs page)"
    )
    assert in_form_words(
        "--customer: customer 'ACMEE' is not known (closest: ACME); add it with "
        "`shopwatt customer add`"
    ) == (
        "Customer: customer 'ACMEE' is not known (closest: ACME); new customers are added on "
        "the gateway"
    )
    assert in_form_words("--valid-until = 2026-01-01: before --date 2026-02-01") == (
        "Valid until = 2026-01-01: before Date 2026-02-01"
    )
