"""`shopwatt job start|stop` through the broker and the running gateway, as a button."""

from __future__ import annotations

from pathlib import Path

from agent.serviceshop import Gateway, Publisher, config, job_event, wait_for, write_config
from gateway.clock import now_ms
from gateway.ledger import Ledger
from tests.ledger.shop import dump, ok, shopwatt
from tests.servers import Mosquitto


def test_a_job_started_and_stopped_on_the_command_line_reaches_the_ledger(
    tmp_path: Path, broker: Mosquitto
) -> None:
    path = write_config(tmp_path, broker, sensors={"mill": "s1"})
    cfg = config(path)
    ok("customer", "add", "acme", "--name", "ACME GmbH", "--config", path)
    with Gateway(path) as gw:
        started = ok(
            "job",
            "start",
            "--machine",
            "mill",
            "--job",
            "WO-9",
            "--customer",
            "acme gmbh",
            "--order",
            "PO-9",
            "--config",
            path,
        )
        assert "started WO-9 on mill for acme" in started

        def running() -> bool | None:
            return any(j[1] == "WO-9" for j in Ledger(cfg).live_state().jobs) or None

        wait_for("the gateway's job book to take the start", running, gw)
        ok("job", "stop", "--machine", "mill", "--parts", "12", "--scrap", "1", "--config", path)

        def stopped() -> tuple[object, ...] | None:
            book = [j for j in Ledger(cfg).live_state().jobs if j[1] == "WO-9"]
            rows = [r for r in dump(path, "rows") if r[2] == "WO-9"]
            return rows[0] if book and book[0][3] is not None and rows else None

        row = wait_for("the stopped job's row", stopped, gw)
    # customer, order, parts, scrap: the start's and the stop's, on the one row.
    assert (row[4], row[18], row[19], row[20]) == ("acme", "PO-9", 12, 1)
    nothing = shopwatt("job", "stop", "--machine", "mill", "--config", path)
    assert nothing.exit_code == 2 and "no job running as far as the gateway knows" in nothing.stderr
    named = shopwatt("job", "stop", "--machine", "mill", "--job", "WO-8", "--config", path)
    assert "--machine = 'mill': no job 'WO-8' started as far as the gateway knows" in named.stderr
    # status's recent changes say what each job event was, not "nothing ()".
    trail = ok("status", "--config", path).split("recent changes:")[1]
    assert " job stop job WO-9, machine mill, parts 12, scrap 1, t_ms " in trail
    assert " job start customer acme, job WO-9, machine mill, order PO-9, t_ms " in trail


def test_without_a_broker_section_job_start_says_why(tmp_path: Path) -> None:
    path = write_config(tmp_path, None, sensors={"mill": "s1"})
    ok("customer", "add", "acme", "--config", path)
    result = shopwatt("job", "start", "--machine", "mill", "--customer", "acme", "--config", path)
    assert result.exit_code == 2
    assert "no [mqtt] section: job events reach the gateway" in result.stderr


def test_job_start_and_stop_name_an_unknown_machine_as_the_option_given(tmp_path: Path) -> None:
    path = write_config(tmp_path, None, sensors={"mill": "s1"})
    ok("customer", "add", "acme", "--config", path)
    for args in (("start", "--customer", "acme"), ("stop",)):
        result = shopwatt("job", args[0], "--machine", "saw", *args[1:], "--config", path)
        assert result.exit_code == 2
        assert f"--machine = 'saw': not a machine in {path} (known: mill)" in result.stderr


def test_a_buttons_customer_name_is_the_customers_id_and_an_unknown_one_is_listed(
    tmp_path: Path, broker: Mosquitto
) -> None:
    path = write_config(tmp_path, broker, sensors={"mill": "s1"})
    ok("customer", "add", "acme", "--name", "ACME GmbH", "--config", path)
    t = now_ms() - 3_600_000
    publisher = Publisher(broker)
    with Gateway(path) as gw:
        publisher.send(
            [
                job_event("mill", "start", "B-1", t, customer="acme  GMBH", src="button-1"),
                job_event("mill", "stop", "B-1", t + 60_000, parts=3, src="button-1"),
                job_event("mill", "start", "B-2", t + 120_000, customer="Zeta", src="button-1"),
            ]
        )

        def both() -> dict[str, tuple[object, object]] | None:
            found = {str(r[2]): (r[4], r[19]) for r in dump(path, "rows") if r[1] == "job"}
            return found if {"B-1", "B-2"} <= set(found) else None

        customers = wait_for("both jobs' rows", both, gw)
    publisher.close()
    # customer and parts: the button's name is the customer's id, its count the job's parts.
    assert customers == {"B-1": ("acme", 3), "B-2": ("Zeta", 0)}
    status = ok("status", "--config", path)
    assert "to check: mill: job B-2 names customer 'Zeta', which is not known" in status
