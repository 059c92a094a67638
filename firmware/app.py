"""The sensor: sampling, meter polling, networking and the watchdog as asyncio tasks.

Sampling runs in short bursts and yields between them, so the network never waits
long and a dead network never stops the sampling: readings queue in the outbox (RAM,
then the flash ring) and are replayed in order when the broker is back. Job events of
the optional job button and card reader wait in a ring of their own (jobs.py).
"""

import asyncio
import json

from . import VERSION, encode
from .clock import Clock
from .config import Config
from .energy import Counters
from .hal import Area, Hal
from .jobs import JOB_SLOTS, REFUSED_TICKS, Debounce, JobSwitch, TapWatch, led_on
from .jobs import SIZE as JOB_SIZE
from .meters import Meter, Values
from .mfrc522 import Mfrc522, ReaderError, uid_hex
from .modbus import Exchange, ModbusError, read_request
from .mqtt import Client
from .mqtt_codec import MqttError
from .outbox import Outbox
from .power import ChannelCal, Result, VoltageCal, finish
from .ring import SLOT, Ring
from .rms import Sums, burst
from .state import SIZE, FlashStore, State, decode, newest

TYPE_CHECKING = False  # MicroPython has no typing module: imports for mypy only
if TYPE_CHECKING:
    from typing import Any

STATE_SLOTS = 8
_BACKOFF_MAX_S = 60
_SAMPLER_STALL_MS = 10000  # no burst for this long: the sampler is hung
_NET_STALL_MS = 180000  # longer than any await in the network task (backoff + timeouts)
_COMMANDS = ("status", "persist", "reboot")


class Sensor:
    """One sensor: call start() once per boot, then await run()."""

    def __init__(self, hal: Hal, cfg: Config, state_area: Area, ring_area: Area) -> None:
        self.hal = hal
        self.cfg = cfg
        self.nct = len(cfg.channels)
        self.nch = self.nct + (1 if cfg.meter is not None else 0)
        self.reads = tuple(hal.adc_reader(c["pin"]) for c in cfg.channels)
        self.vread = None if cfg.voltage is None else hal.adc_reader(cfg.voltage["pin"])
        self.cals = [
            ChannelCal(
                c["amps_per_volt"],
                hal.adc_volts_per_count(c["pin"]),
                c["gain"],
                c["phase"],
                c["floor_a"],
                c["invert"],
            )
            for c in cfg.channels
        ]
        v = cfg.voltage
        self.vcal = (
            None
            if v is None
            else VoltageCal(v["volts_per_volt"], hal.adc_volts_per_count(v["pin"]), v["gain"])
        )
        self.sums = Sums(self.nct)
        for k in range(self.nct):
            self.sums.phase[k] = self.cals[k].phase256
        self.result = Result(self.nct)
        self.counters = Counters(self.nch)
        self.clock = Clock(hal)
        self.flash = FlashStore(state_area, STATE_SLOTS)
        self.ring = Ring(ring_area, cfg.buffer_slots)
        self.outbox = Outbox(self.ring)
        self.meter = None if cfg.meter is None else Meter(cfg.meter["type"])
        self.meter_values: Values | None = None  # last good read in this window
        self.meter_errors = 0  # failed polls in this window
        base = f"shopwatt/v1/{cfg.site}/{cfg.machine}/{cfg.sensor}/"
        self.topic_reading = base + "reading"
        self.topic_status = base + "status"
        self.topic_cmd = base + "cmd"
        self.topic_job = f"shopwatt/v1/{cfg.site}/{cfg.machine}/job"
        self.jobs: JobSwitch | None = None
        if cfg.button is not None or cfg.card_reader is not None:
            ring = Ring(hal.area("jobring.bin", SLOT * JOB_SLOTS), JOB_SLOTS)
            self.jobs = JobSwitch(hal.area("job.bin", 2 * JOB_SIZE), ring, cfg.sensor)
        self.refused = 0  # LED ticks still to show for a refused press or tap
        self.state = State()
        self.seq = 0
        self.cmd_bad = 0
        self.command: str | None = None
        self.connected = False
        self.sent = 0
        self.net_failures = 0
        self.wake = asyncio.Event()
        self.beat_sampler = 0
        self.beat_net = 0
        self._saved_mwh = [0] * self.nch
        self._saved_head = 0
        self._saved_up = 0

    # --- persistence -------------------------------------------------------------------

    def start(self) -> None:
        """Begin a boot: restore counters and ring from RTC memory or flash, count the boot."""
        st = newest(self.flash.load(), decode(self.hal.rtc_load()))
        st.boot += 1
        for k in range(self.nch):
            self.counters.mwh[k] = st.mwh[k]
            self.counters.rem[k] = st.rem[k]
        self.state = st
        self.ring.recover(st.head)
        self.persist(True)
        if self.jobs is not None:
            self.jobs.load()

    def persist(self, to_flash: bool) -> None:
        """Store the record in RTC memory, and in flash when asked."""
        st = self.state
        st.version += 1
        st.head = self.ring.head
        for k in range(self.nch):
            st.mwh[k] = self.counters.mwh[k]
            st.rem[k] = self.counters.rem[k]
        self.hal.rtc_store(st.encode())
        if to_flash:
            self.flash.save(st)
            self._saved_mwh = self.counters.mwh[:]
            self._saved_head = self.ring.head
            self._saved_up = self.clock.uptime()

    def flash_due(self, up_ms: int) -> bool:
        """True when unsaved energy or the ring head must go to flash now."""
        cfg = self.cfg
        unsaved = False
        for k in range(self.nct):  # a meter keeps its own counter: nothing to lose there
            delta = self.counters.mwh[k] - self._saved_mwh[k]
            if delta >= cfg.persist_mwh:
                return True
            unsaved = unsaved or delta > 0
        if unsaved and up_ms - self._saved_up >= cfg.persist_s * 1000:
            return True
        moved = self.ring.head - self._saved_head
        # The head is found again by scanning at most one lap: persist it before it laps, and
        # once the ring has drained so a power cut does not replay the whole backlog.
        return moved >= self.ring.slots // 4 or (moved != 0 and len(self.ring) == 0)

    # --- measuring ---------------------------------------------------------------------

    def close_window(self, w_ms: int, up_ms: int) -> bytes:
        """Turn the window's sums and meter reads into a reading, queue it, return it."""
        r = self.result
        finish(self.sums, self.cals, self.vcal, self.cfg.nominal_v, self.cfg.pf, r)
        self.sums.track_offsets()
        self.sums.clear()
        ma: list[int | None] = []
        dw: list[int] = []
        for k in range(self.nct):
            self.counters.add(k, r.dw[k], w_ms)
            ma.append(r.ma[k])
            dw.append(r.dw[k])
        vr = r.vr_dv
        if self.meter is not None:
            mv = self.meter_values
            if mv is None:
                ma.append(None)
                dw.append(0)
            else:
                self.counters.set(self.nct, mv.mwh)
                ma.append(mv.ma)
                dw.append(mv.dw)
                if vr is None:
                    vr = mv.dv
        payload = encode.reading(
            self.state.boot,
            self.seq,
            self.clock.utc(up_ms),
            up_ms,
            w_ms,
            r.n,
            vr,
            ma,
            dw,
            self.counters.mwh,
            r.clip,
            self.ring.lost,
            self.meter_errors,
            self.hal.wifi_rssi(),
            self.hal.mem_free(),
        )
        self.meter_values = None
        self.meter_errors = 0
        self.seq += 1
        self.outbox.put(payload)
        self.persist(self.flash_due(up_ms))
        self.wake.set()
        return payload

    async def sample(self) -> None:
        """Sample in bursts forever, closing a window every window_ms."""
        clock = self.clock
        start = clock.uptime()
        while True:
            if self.reads:
                burst(self.sums, self.reads, self.vread, self.cfg.burst)
                await asyncio.sleep(0)
            else:
                await asyncio.sleep(0.05)
            up = clock.uptime()
            self.beat_sampler = up
            if up - start >= self.cfg.window_ms:
                self.close_window(up - start, up)
                start = up

    async def poll_meter(self) -> None:
        """Read the Modbus meter every poll_ms; failures are counted per window."""
        m = self.cfg.meter
        meter = self.meter
        if m is None or meter is None:
            return
        port = self.hal.uart(m["uart"], m["tx"], m["rx"], m["baud"])
        buf = bytearray(256)
        while True:
            regs = []
            try:
                for fc, start, count in meter.requests():
                    while port.readinto(buf):
                        pass  # drop stale bytes (a late reply to an earlier request)
                    ex = Exchange(
                        read_request(m["addr"], fc, start, count),
                        m["timeout_ms"],
                        self.clock.uptime(),
                    )
                    port.write(ex.request)
                    got = None
                    while got is None:
                        await asyncio.sleep(0.01)
                        n = port.readinto(buf)
                        if n:
                            ex.feed(bytes(buf[:n]))
                        got = ex.poll(self.clock.uptime())
                    regs.append(got)
                self.meter_values = meter.decode(regs)
            except ModbusError:
                self.meter_errors += 1
            await asyncio.sleep(m["poll_ms"] / 1000)

    # --- job button and card reader ------------------------------------------------------

    def job_input(self, accepted: bool) -> None:
        """After a press or tap: wake the network task, or show the refusal on the LED."""
        if accepted:
            self.wake.set()
        else:
            self.refused = REFUSED_TICKS

    async def watch_button(self, jobs: JobSwitch, pin: int, debounce_ms: int) -> None:
        """Poll the job button every 10 ms: a press starts or stops the job."""
        pressed = self.hal.button(pin)
        debounce = Debounce(debounce_ms)
        clock = self.clock
        while True:
            await asyncio.sleep(0.01)
            up = clock.uptime()
            if debounce.feed(pressed(), up):
                self.job_input(jobs.press(clock.utc(up), up))

    async def watch_reader(self, jobs: JobSwitch, r: "dict[str, Any]") -> None:
        """Poll the card reader every poll_ms: a tap starts or stops the job."""
        reader = Mfrc522(
            self.hal.spi_device(r["spi"], r["sck"], r["mosi"], r["miso"], r["cs"], r["rst"])
        )
        taps = TapWatch(3 * r["poll_ms"])
        clock = self.clock
        ready = False
        while True:
            await asyncio.sleep(r["poll_ms"] / 1000)
            try:
                if not ready:
                    reader.init()  # again at every poll until it answers (a loose wire)
                    ready = True
                uid = reader.read_uid()
            except (ReaderError, OSError):
                ready = False
                continue
            up = clock.uptime()
            card = taps.feed(None if uid is None else uid_hex(uid), up)
            if card is not None:
                self.job_input(jobs.tap(card, clock.utc(up), up))

    # --- network -----------------------------------------------------------------------

    def channels(self) -> "list[tuple[str, str, str]]":
        """(name, src, power) per channel, for the status."""
        kind = "apparent" if self.vcal is None else "real"
        out = [(c["name"], "ct", kind) for c in self.cfg.channels]
        if self.cfg.meter is not None:
            out.append((self.cfg.meter["name"], "meter", "real"))
        return out

    def status(self) -> bytes:
        """The retained online status."""
        up = self.clock.uptime()
        return encode.status_online(
            VERSION,
            self.state.boot,
            self.hal.wifi_ip() or "0.0.0.0",
            self.hal.wifi_rssi(),
            self.clock.utc(up),
            up,
            self.hal.reset_cause(),
            self.cfg.window_ms,
            len(self.outbox),
            self.ring.lost,
            self.cmd_bad,
            self.channels(),
        )

    def on_message(self, topic: str, payload: bytes) -> None:
        """A command arrived: remember it for the network task, count it if it is bad."""
        try:
            doc = json.loads(payload) if len(payload) <= 256 else None
        except ValueError:
            doc = None
        if (
            topic != self.topic_cmd
            or not isinstance(doc, dict)
            or doc.get("v") != 1
            or doc.get("cmd") not in _COMMANDS
            or len(doc) != 2
        ):
            self.cmd_bad += 1
            return
        self.command = doc["cmd"]
        self.wake.set()

    async def sync_time(self) -> None:
        """One SNTP exchange; the clock keeps its old anchor if it fails."""
        utc = await self.hal.ntp_ms(self.cfg.ntp_host, 2000)
        if utc is not None:
            self.clock.sync(utc)

    async def _wifi(self) -> None:
        cfg = self.cfg
        self.hal.wifi_start(cfg.wifi_ssid, cfg.wifi_password, cfg.sensor)
        while self.hal.wifi_ip() is None:
            self.beat_net = self.clock.uptime()
            await asyncio.sleep(0.5)

    async def network(self) -> None:
        """Stay connected: Wi-Fi, time, MQTT session; reconnect with exponential backoff."""
        cfg = self.cfg
        backoff = 1
        while True:
            self.beat_net = self.clock.uptime()
            if self.hal.wifi_ip() is None:
                await self._wifi()
            if self.clock.syncs == 0:
                await self.sync_time()
            client = Client(
                cfg.mqtt_host,
                cfg.mqtt_port,
                "shopwatt-" + cfg.sensor,
                cfg.keepalive_s,
                (self.topic_status, encode.status_offline(self.state.boot), 1, True),
                cfg.mqtt_user,
                cfg.mqtt_password,
                self.on_message,
            )
            try:
                await client.connect()
                self.outbox.link_up()
                self.connected = True
                await client.subscribe(self.topic_cmd)
                await client.publish(self.topic_status, self.status(), 1, True)
                backoff = 1
                await self._drain(client)
            except (asyncio.TimeoutError, OSError, MqttError):  # noqa: UP041 - MicroPython has no builtin TimeoutError
                self.net_failures += 1
            finally:
                self.connected = False
                if self.outbox.link_down():
                    self.persist(True)
                await client.close()
            # Jitter from the uptime so a shop full of sensors does not reconnect in step.
            await asyncio.sleep(backoff + (self.clock.uptime() % 1000) / 1000)
            backoff = min(backoff * 2, _BACKOFF_MAX_S)

    async def _drain(self, client: Client) -> None:
        """Send readings oldest first, one in flight; serve commands, status and time."""
        cfg = self.cfg
        up = self.clock.uptime()
        next_status = up + cfg.status_s * 1000
        next_ntp = up + cfg.ntp_resync_s * 1000
        while client.alive:
            up = self.clock.uptime()
            self.beat_net = up
            # Job events first: a few a day, and a person is waiting to see them.
            jobs = self.jobs
            job = None if jobs is None else jobs.next()
            if jobs is not None and job is not None:
                await client.publish(self.topic_job, job, 1, False)
                jobs.sent()
                continue
            payload = self.outbox.next()
            if payload is not None:
                await client.publish(self.topic_reading, payload, 1, False)
                self.outbox.done()
                self.sent += 1
                if self.flash_due(self.clock.uptime()):
                    self.persist(True)
                continue
            cmd = self.command
            self.command = None
            if cmd == "persist":
                self.persist(True)
            elif cmd == "reboot":
                await self.goodbye(client)
                self.hal.reset()
                return
            if cmd == "status" or up >= next_status:
                await client.publish(self.topic_status, self.status(), 1, True)
                next_status = up + cfg.status_s * 1000
            if up >= next_ntp:
                await self.sync_time()
                next_ntp = up + cfg.ntp_resync_s * 1000
            self.wake.clear()
            try:  # noqa: SIM105 - MicroPython has no contextlib
                await asyncio.wait_for(self.wake.wait(), 1)
            except asyncio.TimeoutError:  # noqa: UP041 - MicroPython has no builtin TimeoutError
                pass

    async def goodbye(self, client: Client) -> None:
        """Save everything, say offline ourselves, and disconnect cleanly."""
        self.persist(True)
        await client.publish(self.topic_status, encode.status_offline(self.state.boot), 1, True)
        await client.close(True)

    # --- health ------------------------------------------------------------------------

    async def supervise(self) -> None:
        """Feed the watchdog only while sampler and network make progress; drive the LED."""
        hal = self.hal
        hal.wdt_start(self.cfg.wdt_ms)
        tick = 0
        while True:
            await asyncio.sleep(0.25)
            tick += 1
            up = self.clock.uptime()
            if up - self.beat_sampler < _SAMPLER_STALL_MS and up - self.beat_net < _NET_STALL_MS:
                hal.wdt_feed()
            # The LED's patterns are in jobs.led_on and docs/firmware.md.
            link = 2 if self.connected else 0 if hal.wifi_ip() is None else 1
            running = self.jobs is not None and self.jobs.job != ""
            hal.led(led_on(tick, link, running, self.refused))
            self.refused = max(0, self.refused - 1)

    async def run(self) -> None:
        """All tasks, forever (returns only if one of them fails)."""
        self.beat_sampler = self.beat_net = self.clock.uptime()
        tasks = [self.sample(), self.network(), self.supervise()]
        if self.meter is not None:
            tasks.append(self.poll_meter())
        jobs, button, reader = self.jobs, self.cfg.button, self.cfg.card_reader
        if jobs is not None and button is not None:
            tasks.append(self.watch_button(jobs, button["pin"], button["debounce_ms"]))
        if jobs is not None and reader is not None:
            tasks.append(self.watch_reader(jobs, reader))
        await asyncio.gather(*tasks)


def open_sensor(hal: Hal, cfg: Config) -> Sensor:
    """A sensor on this hal's storage: the state file and the offline ring."""
    return Sensor(
        hal,
        cfg,
        hal.area("state.bin", SIZE * STATE_SLOTS),
        hal.area("ring.bin", SLOT * cfg.buffer_slots),
    )
