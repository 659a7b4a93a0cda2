"""The lane's permit rules (issue #15), on a simulated clock: in-flight limit, rate, order,
pause, circuit breaker, endpoint-wide Retry-After, leases lost with a worker, and a state
that survives continue-as-new."""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import pairwise

from hookline.contracts.lane_permits import LEAD, LOOKAHEAD, LanePermits, LaneSettings, Seen

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def _at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _lane(**settings: object) -> LanePermits:
    lane = LanePermits()
    lane.configure(LaneSettings.model_validate(settings), T0)
    return lane


def _granted(lane: LanePermits, now: datetime) -> list[str]:
    return [lease.delivery for lease in lane.grant(now)]


def test_no_more_than_max_in_flight_and_a_finished_attempt_frees_its_permit() -> None:
    lane = _lane(max_in_flight=2)
    for delivery in ("a", "b", "c"):
        lane.ask(delivery)

    assert _granted(lane, T0) == ["a", "b"]
    assert _granted(lane, _at(1)) == []
    lane.attempted("a", "succeeded", _at(2))
    assert _granted(lane, _at(2)) == ["c"]


def test_the_rate_holds_in_every_second_with_permits_spread_out() -> None:
    lane = _lane(rate_limit_per_s=5, max_in_flight=1000)
    for n in range(300):
        lane.ask(f"d{n}")
    starts: list[float] = []
    now = 0.0
    while lane.waiting and now < 120:
        for lease in lane.grant(_at(now)):
            planned = lease.start_at or _at(now)
            assert _at(now) <= planned <= _at(now + 2)  # planned at most 2 s ahead
            starts.append((planned - T0).total_seconds())
            lane.attempted(lease.delivery, "succeeded", _at(now))
        if not lane.waiting:
            break
        wake = lane.wake_at(_at(now))
        assert wake is not None
        now = max(now + 0.001, (wake - T0).total_seconds())

    assert len(starts) == 300
    busiest = max(sum(1 for s in starts if t <= s <= t + 1) for t in starts)
    assert busiest == 5
    # Spread out: one at a time, a fifth of a second apart (or a millisecond more).
    assert min(b - a for a, b in pairwise(starts)) >= 0.2
    rate = (len(starts) - 1) / (starts[-1] - starts[0])
    assert 4.9 <= rate <= 5.0


def test_a_rate_limited_lane_plans_its_permits_up_to_two_seconds_ahead() -> None:
    lane = _lane(rate_limit_per_s=100, max_in_flight=1000)
    for n in range(300):
        lane.ask(f"d{n}")

    planned = [lease.start_at for lease in lane.grant(T0)]
    # LEAD ahead at the soonest, two seconds at the latest; 20 every 0.201 s.
    assert Counter(planned)[T0 + LEAD] == 20
    assert all(start is not None and T0 + LEAD <= start <= _at(2) for start in planned)
    slots = sorted({start for start in planned if start is not None})
    assert len(planned) == 20 * len(slots) >= 160
    assert min(b - a for a, b in pairwise(slots)) >= timedelta(seconds=0.2)
    assert lane.grant(T0) == []  # the next would start over two seconds from now
    wake = lane.wake_at(T0)
    assert wake is not None and len(lane.grant(wake)) == 20


def test_a_delivery_whose_permit_expired_gets_one_planned_as_far_ahead_as_it_asks() -> None:
    lane = _lane(rate_limit_per_s=5)
    lane.ask("a", lead_s=0.5)  # its worker was late: it asks for more time to hear of it
    lane.ask("b")
    lane.ask("a", lead_s=0.7)  # asking again while waiting: the latest lead counts
    lane.ask("c", lead_s=30)  # at most as far ahead as a lane plans
    lane.ask("d", lead_s=float("nan"))  # not a number: none

    grants = [(g.delivery, g.start_at) for g in lane.grant(T0)]
    # The others take the sooner slots (a fifth of a second apart, and a millisecond); a
    # and c get the first their leads allow, c two seconds out, not thirty.
    assert grants == [
        ("b", _at(0.1)),
        ("d", _at(0.301)),
        ("a", _at(0.7)),
        ("c", T0 + LOOKAHEAD),
    ]


def test_the_rate_holds_in_every_window_whatever_leads_deliveries_ask_for() -> None:
    # Random asks, some with leads (those held back take later slots, out of grant order),
    # at random times: no burst window and no pace window ever holds too many.
    for seed in range(100):
        rng = random.Random(seed)
        rate = rng.choice([0.5, 1, 3, 5, 10, 20, 50, 100])
        lane = _lane(rate_limit_per_s=rate, max_in_flight=1000)
        now, starts, asked = T0, list[datetime](), 0
        for _ in range(150):
            for _ in range(rng.randint(0, 3)):
                lane.ask(f"d{asked}", lead_s=rng.choice([0, 0, 0, rng.uniform(0, 2.5)]))
                asked += 1
            for lease in lane.grant(now):
                assert lease.start_at is not None
                starts.append(lease.start_at)
                lane.attempted(lease.delivery, "succeeded", now)
            now += timedelta(seconds=rng.uniform(0.001, 0.5))
        starts.sort()
        burst = max(1, int(rate))
        step = max(1, int(rate * 0.2))
        for size in (burst, step):
            window = timedelta(seconds=size / rate)
            most = max((sum(1 for s in starts if t <= s < t + window) for t in starts), default=0)
            assert most <= size, (seed, rate, size, most)


def test_a_lane_that_ran_before_ignores_leads() -> None:
    lane = _lane(rate_limit_per_s=5)
    lane.honours_leads = False  # as a lane begun before leads replays
    lane.ask("a", lead_s=1.5)

    assert [(g.delivery, g.start_at) for g in lane.grant(T0)] == [("a", T0 + LEAD)]


def test_a_lead_wastes_no_slot_and_keeps_a_fast_rate_in_every_window() -> None:
    lane = _lane(rate_limit_per_s=100, max_in_flight=1000)
    lane.ask("late", accepted_at=T0, lead_s=1.5)
    for n in range(300):
        lane.ask(f"d{n}", accepted_at=T0)
    starts: dict[str, datetime] = {}
    now = T0
    while lane.waiting and now < _at(10):
        starts |= {g.delivery: g.start_at for g in lane.grant(now) if g.start_at is not None}
        now = max(now + timedelta(milliseconds=1), lane.wake_at(now) or now)

    # The late one 1.5 s out at the soonest; the others in the slots before it: 301 permits
    # at 100/s (20 every 0.201 s) from 0.1 s on, none left empty.
    times = sorted(starts.values())
    assert len(times) == 301 and starts["late"] >= _at(1.5)
    assert times[-1] <= _at(0.1 + 0.201 * 15) and times.count(times[-1]) == 1
    second, step = timedelta(seconds=1), timedelta(seconds=0.2)
    assert max(sum(1 for s in times if t <= s < t + second) for t in times) == 100
    assert max(sum(1 for s in times if t <= s < t + step) for t in times) == 20


def test_a_slow_rate_bursts_one_at_a_time() -> None:
    lane = _lane(rate_limit_per_s=0.5)
    lane.ask("a")
    lane.ask("b")

    assert [(g.delivery, g.start_at) for g in lane.grant(T0)] == [("a", T0 + LEAD)]
    assert lane.grant(T0 + LEAD) == []
    # Not on the window's very edge: b's start is planned a millisecond past it.
    [b] = lane.grant(T0 + LEAD + timedelta(milliseconds=1))
    assert (b.delivery, b.start_at) == ("b", T0 + LEAD + timedelta(seconds=2.001))


def test_fifo_lets_only_the_oldest_of_each_key_attempt() -> None:
    lane = _lane(ordering="fifo")
    for delivery, key in (("a1", "a"), ("a2", "a"), ("b1", "b")):
        lane.enqueue(delivery, key)

    lane.ask("a2", "a")  # asks first, but a1 was accepted first
    lane.ask("b1", "b")
    assert _granted(lane, T0) == ["b1"]

    lane.ask("a1", "a")
    assert _granted(lane, _at(1)) == ["a1"]
    lane.attempted("a1", "receiver_failed", _at(2))
    assert _granted(lane, _at(2)) == []  # a1 backs off; a2 still waits for it to end
    lane.ended("a1")  # failed for good (or succeeded, or was cancelled)
    assert _granted(lane, _at(3)) == ["a2"]


def test_a_fifo_delivery_the_lane_never_saw_accepted_queues_when_it_asks() -> None:
    lane = _lane(ordering="fifo")
    lane.ask("late", "k")
    lane.enqueue("later", "k")
    lane.ask("later", "k")

    assert _granted(lane, T0) == ["late"]


def test_a_fifo_delivery_asking_again_after_it_left_its_queue_goes_to_the_end() -> None:
    lane = _lane(ordering="fifo")
    for delivery in ("d1", "d2", "d3"):
        lane.enqueue(delivery, "k")
    lane.ask("d1", "k")
    assert _granted(lane, T0) == ["d1"]
    lane.ended("d1")  # failed: the key moves on
    lane.ask("d1", "k")  # retried by hand: behind those accepted after it
    lane.ask("d3", "k")
    lane.ask("d2", "k")

    assert _granted(lane, _at(1)) == ["d2"]
    lane.ended("d2")
    assert _granted(lane, _at(2)) == ["d3"]
    lane.ended("d3")
    assert _granted(lane, _at(3)) == ["d1"]


def test_a_silent_queue_head_is_looked_at_less_and_less_often_while_it_runs() -> None:
    lane = _lane(ordering="fifo")
    lane.enqueue("head", "k")
    lane.enqueue("next", "k")
    lane.ask("next", "k")

    assert lane.heads_to_check(T0) == []  # silent from now: the lane has just seen it
    assert lane.wake_at(T0) == _at(30)
    looks = []
    now = T0
    while now < _at(6 * 3600):
        now = lane.wake_at(now) or now
        assert lane.heads_to_check(now) == ["head"]
        assert lane.checked({"head": "running"}, now) == []
        looks.append((now - T0).total_seconds())
    assert looks[:5] == [30, 90, 210, 450, 930]  # 30 s, doubling
    assert looks[-1] - looks[-2] == 3600  # at most hourly
    assert len(looks) < 15
    assert _granted(lane, now) == []  # the running head still holds its key


def test_a_queue_head_that_ended_unseen_or_never_started_leaves_its_queue() -> None:
    lane = _lane(ordering="fifo")
    for delivery, key in (("ended", "a"), ("a2", "a"), ("ghost", "b"), ("b2", "b")):
        lane.enqueue(delivery, key)
    lane.ask("a2", "a")
    lane.ask("b2", "b")
    lane.heads_to_check(T0)

    seen: dict[str, Seen] = {"ended": "ended", "ghost": "not_found"}
    assert lane.checked(seen, _at(30)) == ["ended"]
    assert _granted(lane, _at(30)) == ["a2"]
    # A delivery not found may be a fan-out's, started after it was queued: given time.
    assert lane.checked({"ghost": "not_found"}, _at(9 * 60)) == []
    assert lane.checked({"ghost": "not_found"}, _at(11 * 60)) == ["ghost"]
    assert _granted(lane, _at(11 * 60)) == ["b2"]


def test_a_head_that_asks_is_no_longer_silent() -> None:
    lane = _lane(ordering="fifo")
    lane.enqueue("head", "k")
    lane.heads_to_check(T0)
    lane.ask("head", "k")

    assert lane.heads_to_check(_at(60)) == []
    assert lane.checked({"head": "not_found"}, _at(3600)) == []  # a late answer changes nothing
    assert _granted(lane, _at(3600)) == ["head"]


def test_turning_fifo_on_queues_what_holds_and_waits_and_turning_it_off_drops_queues() -> None:
    lane = _lane(max_in_flight=1)
    for delivery in ("held", "w1", "w2"):
        lane.ask(delivery, "k")
    assert _granted(lane, T0) == ["held"]
    lane.configure(LaneSettings(ordering="fifo", max_in_flight=5), T0)

    assert lane.queues == {"k": ["held", "w1", "w2"]}
    assert _granted(lane, T0) == []  # w1 waits for the one holding a permit
    lane.configure(LaneSettings(ordering="none", max_in_flight=5), T0)
    assert lane.queues == {} and lane.silent == {}
    assert _granted(lane, T0) == ["w1", "w2"]


def test_paused_grants_nothing_and_resume_releases_in_order_at_the_lanes_pace() -> None:
    lane = _lane(max_in_flight=2, paused=True)
    for delivery in ("a", "b", "c"):
        lane.ask(delivery)
    assert _granted(lane, T0) == []
    assert lane.state(T0) == "paused"
    assert lane.wake_at(T0) is None  # only a resume can change that

    lane.configure(LaneSettings(max_in_flight=2), _at(60))
    assert _granted(lane, _at(60)) == ["a", "b"]
    assert lane.state(_at(60)) == "healthy"


def test_the_breaker_opens_probes_one_at_a_time_and_closes_with_a_slow_start() -> None:
    lane = _lane(max_in_flight=4, breaker_failures=3)
    for n in range(3):
        lane.ask(f"f{n}")
    for lease in lane.grant(T0):
        lane.attempted(lease.delivery, "receiver_failed", _at(1))
    assert lane.state(_at(1)) == "open"

    for n in range(8):
        lane.ask(f"w{n}")
    assert _granted(lane, _at(2)) == []  # the first probe waits 5 s
    assert lane.wake_at(_at(2)) == _at(6)
    assert _granted(lane, _at(6)) == ["w0"]  # the probe
    assert lane.state(_at(6)) == "half_open"
    assert _granted(lane, _at(7)) == []  # the others wait, spending no attempt
    lane.attempted("w0", "receiver_failed", _at(8))
    assert lane.wake_at(_at(8)) == _at(18)  # each failed probe doubles the wait
    assert _granted(lane, _at(17)) == []
    assert _granted(lane, _at(18)) == ["w1"]  # another probe
    lane.attempted("w1", "succeeded", _at(19))

    assert lane.state(_at(19)) == "healthy"
    assert _granted(lane, _at(19)) == ["w2"]  # the backlog drains from 1 in flight
    lane.attempted("w2", "succeeded", _at(20))
    assert _granted(lane, _at(20)) == ["w3", "w4"]  # one more per success
    lane.attempted("w3", "succeeded", _at(21))
    assert _granted(lane, _at(21)) == ["w5", "w6"]
    lane.attempted("w4", "succeeded", _at(22))
    assert _granted(lane, _at(22)) == ["w7"]  # 4 in flight: max_in_flight reached
    assert lane.slow_start is None


def test_probes_are_at_most_ten_seconds_apart_while_the_receiver_is_down() -> None:
    lane = _lane(breaker_failures=3, max_in_flight=5)
    for n in range(100):
        lane.ask(f"d{n}")
    probes: list[float] = []
    now = T0
    while now < _at(600):
        for lease in lane.grant(now):
            probes.append((now - T0).total_seconds())
            lane.attempted(lease.delivery, "receiver_failed", now)
            lane.ask(lease.delivery)  # it backs off and asks again
        now = lane.wake_at(now) or now + timedelta(seconds=1)

    # Five in flight fail (the third opens the circuit), then probes 5, 10, 10, ... s apart.
    assert probes[:9] == [0, 0, 0, 0, 0, 5, 15, 25, 35]
    assert len(probes) == 5 + 60  # ten minutes down, 100 deliveries: 65 attempts


def test_a_lane_that_ran_before_keeps_its_lead_and_probe_spacing() -> None:
    """Lanes of the release before (patch lane-short-waits off) replay as they ran: permits
    planned a quarter second ahead, probes up to 30 s apart."""
    lane = _lane(breaker_failures=1, max_in_flight=1)
    lane.short_waits = False
    lane.ask("a")
    probes = []
    now = T0
    while now < _at(120):
        for lease in lane.grant(now):
            probes.append((now - T0).total_seconds())
            lane.attempted(lease.delivery, "receiver_failed", now)
            lane.ask(lease.delivery)
        now = lane.wake_at(now) or now + timedelta(seconds=1)
    rated = _lane(rate_limit_per_s=1)
    rated.short_waits = False
    rated.ask("b")

    assert probes == [0, 5, 15, 35, 65, 95]
    assert [lease.start_at for lease in rated.grant(T0)] == [T0 + timedelta(milliseconds=250)]


def test_a_rate_switched_off_and_on_counts_the_permits_planned_before() -> None:
    def starts_in_first_second(counts_planned: bool) -> int:
        lane = _lane(rate_limit_per_s=5, max_in_flight=1000)
        lane.counts_planned = counts_planned
        for n in range(20):
            lane.ask(f"d{n}")
        planned = [lease.start_at for lease in lane.grant(T0)]  # up to 2 s ahead
        lane.configure(LaneSettings(max_in_flight=1000), T0)  # the rate off...
        lane.configure(LaneSettings(rate_limit_per_s=5, max_in_flight=1000), T0)  # ...and on
        planned += [lease.start_at for lease in lane.grant(T0)]
        return sum(1 for start in planned if start is not None and start < _at(1) + LEAD)

    assert starts_in_first_second(counts_planned=True) == 5  # the rate's burst, as always
    # A lane of the release before (patch lane-rate-counts-planned off) replays as it ran:
    # its window started empty, and the same second got twice the burst.
    assert starts_in_first_second(counts_planned=False) == 10


def test_a_worker_trips_the_breaker_and_the_lane_says_when_the_endpoint_recovered() -> None:
    lane = _lane(max_in_flight=2, tripped=True)
    lane.ask("a")
    lane.ask("b")
    lane.trip(T0)

    assert lane.state(T0) == "open"
    assert not lane.recovered(T0)
    assert _granted(lane, _at(5)) == ["a"]
    lane.attempted("a", "succeeded", _at(6))
    assert not lane.recovered(_at(6))  # slow start: 1 in flight of 2
    assert _granted(lane, _at(6)) == ["b"]
    lane.attempted("b", "succeeded", _at(7))
    assert lane.recovered(_at(7))
    lane.untripped()
    assert not lane.recovered(_at(7))


def test_a_retry_after_trip_holds_the_lane_and_recovers_after_a_success() -> None:
    lane = _lane(tripped=True)
    lane.trip(T0, hold_until=_at(30))
    lane.ask("a")

    assert lane.state(T0) == "healthy"
    assert _granted(lane, _at(29)) == []
    assert _granted(lane, _at(30)) == ["a"]
    assert not lane.recovered(_at(30))
    lane.attempted("a", "succeeded", _at(31))
    assert lane.recovered(_at(31))


def test_no_breaker_when_it_is_turned_off() -> None:
    lane = _lane(breaker_failures=0)
    for n in range(10):
        lane.ask(f"d{n}")
        lane.grant(_at(n))
        lane.attempted(f"d{n}", "receiver_failed", _at(n))
    lane.trip(_at(10))

    assert lane.state(_at(10)) == "healthy"
    assert lane.consecutive_failures == 10


def test_refused_attempts_neither_open_nor_close_the_breaker() -> None:
    lane = _lane(breaker_failures=2)
    lane.ask("a")
    lane.grant(T0)
    lane.attempted("a", "receiver_failed", _at(1))
    lane.ask("b")
    lane.grant(_at(1))
    lane.attempted("b", "refused", _at(2))  # a 400: the receiver answers
    assert (lane.consecutive_failures, lane.state(_at(2))) == (1, "healthy")


def test_retry_after_holds_the_whole_lane_until_then() -> None:
    lane = _lane()
    lane.ask("a")
    lane.grant(T0)
    lane.ask("b")
    lane.ask("c")
    lane.attempted("a", "receiver_failed", _at(1), hold_until=_at(31))

    assert _granted(lane, _at(1)) == []
    assert lane.wake_at(_at(1)) == _at(31)
    assert _granted(lane, _at(31)) == ["b", "c"]


def test_a_permit_lost_with_its_worker_is_taken_back_at_its_deadline() -> None:
    lane = _lane(max_in_flight=1, lease_s=45)
    lane.ask("a")
    lane.ask("b")
    assert _granted(lane, T0) == ["a"]
    assert lane.wake_at(T0) == _at(45)

    assert _granted(lane, _at(44)) == []
    assert _granted(lane, _at(45)) == ["b"]


def test_the_oldest_accepted_goes_first_whatever_order_they_ask_in() -> None:
    lane = _lane(max_in_flight=1)
    lane.ask("new", accepted_at=_at(3))
    lane.ask("old", accepted_at=_at(1))
    lane.ask("middle", accepted_at=_at(2))

    granted: list[str] = []
    for n in range(3):
        [delivery] = _granted(lane, _at(10 + n))
        lane.attempted(delivery, "succeeded", _at(10 + n))
        granted.append(delivery)

    assert granted == ["old", "middle", "new"]


def test_many_waiting_are_granted_a_batch_at_a_time() -> None:
    lane = _lane(max_in_flight=10_000)
    for n in range(1200):
        lane.ask(f"d{n}")

    assert len(lane.grant(T0, at_most=500)) == 500
    assert len(lane.grant(T0, at_most=500)) == 500
    assert len(lane.grant(T0, at_most=500)) == 200


def test_asking_again_while_waiting_or_holding_a_permit_changes_nothing() -> None:
    lane = _lane(max_in_flight=5)
    lane.ask("a")
    lane.ask("a")
    assert _granted(lane, T0) == ["a"]
    assert lane.ask("a")  # a duplicate signal: it holds a permit (whose grant may be resent)
    assert _granted(lane, _at(1)) == []


def test_the_state_survives_continue_as_new() -> None:
    lane = _lane(rate_limit_per_s=10, ordering="fifo")
    for n in range(6):
        lane.enqueue(f"d{n}", key=str(n % 2))
        lane.ask(f"d{n}", key=str(n % 2))
    first = _granted(lane, T0)

    carried = LanePermits.model_validate_json(lane.model_dump_json())

    assert first == ["d0", "d1"]
    for copy in (lane, carried):
        copy.ended("d0")
        copy.ended("d1")
    assert _granted(carried, _at(2)) == _granted(lane, _at(2)) == ["d2", "d3"]
    assert Counter(w.key for w in carried.waiting) == Counter({"0": 1, "1": 1})


def test_a_full_lane_keeps_no_more_waiting_and_takes_those_asking_again_once_there_is_room() -> (
    None
):
    lane = _lane(max_in_flight=1, max_waiting=3)
    answers = [lane.ask(f"d{n}") for n in range(5)]
    assert answers == ["waiting", "waiting", "waiting", "full", "full"]
    assert [w.delivery for w in lane.waiting] == ["d0", "d1", "d2"]

    assert _granted(lane, T0) == ["d0"]
    assert lane.ask("d0") == "held"
    assert lane.ask("d4") == "waiting"  # asks again: there is room now
    assert [w.delivery for w in lane.waiting] == ["d1", "d2", "d4"]


def test_a_full_fifo_lane_queues_no_more() -> None:
    lane = _lane(ordering="fifo", max_waiting=2)
    for n in range(3):
        lane.enqueue(f"d{n}", "k")
    assert lane.queues == {"k": ["d0", "d1"]}
    assert lane.ask("d2", "k") == "full"  # not queued: it could never be granted
    assert lane.ask("d1", "k") == "waiting"


def test_winding_down_lets_every_waiting_delivery_go_past_an_open_circuit_and_a_hold() -> None:
    lane = _lane(max_in_flight=5, breaker_failures=1)
    lane.ask("failed")
    lane.grant(T0)
    lane.attempted("failed", "receiver_failed", T0, hold_until=_at(3600))
    for n in range(3):
        lane.ask(f"d{n}")
    assert _granted(lane, _at(1)) == []

    lane.configure(LaneSettings(max_in_flight=10_000, winding_down=True), _at(1))
    assert _granted(lane, _at(1)) == ["d0", "d1", "d2"]


def test_a_winding_down_lane_opens_no_circuit_and_holds_for_nothing() -> None:
    lane = _lane(breaker_failures=1)
    lane.configure(LaneSettings(max_in_flight=10_000, winding_down=True, breaker_failures=0), T0)
    for n in range(3):
        lane.ask(f"d{n}")
    granted = lane.grant(T0)
    lane.attempted("d0", "receiver_failed", T0, hold_until=_at(3600))
    lane.trip(T0, hold_until=_at(3600))
    lane.ask("d3")

    assert len(granted) == 3
    assert _granted(lane, _at(1)) == ["d3"]
