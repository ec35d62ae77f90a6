"""The ARM pacer (issue #15): a local bucket estimate from x-ms-ratelimit-remaining-* headers."""

from __future__ import annotations

from azure_edition_operator.azure.pacing import READS_HEADERS, Pacer, remaining_of


def test_remaining_takes_the_smaller_of_regional_and_global():
    headers = {READS_HEADERS[0]: "120", READS_HEADERS[1]: "7"}
    assert remaining_of(headers, READS_HEADERS) == 7
    assert remaining_of({READS_HEADERS[0]: "x"}, READS_HEADERS) is None
    assert remaining_of({}, READS_HEADERS) is None


def test_nothing_known_nothing_held():
    assert Pacer().delay(0.0) == 0.0


def test_plenty_left_sends_at_once_and_in_flight_requests_count():
    p = Pacer()
    p.answered(100, 0.0, accepted=True)
    assert p.delay(0.0) == 0.0
    for _ in range(89):
        p.sending()
    assert p.delay(0.0) == 0.0  # 100 - 89 = 11 > reserve 10
    p.sending()
    assert p.delay(0.0) > 0.0  # at the reserve: wait for the refill


def test_at_the_reserve_waits_one_refill():
    p = Pacer(initial_rate=2.0)
    p.answered(25, 0.0, accepted=True)
    p.answered(2, 1.0, accepted=True)  # reserve is max(2, 2.5) = 2.5
    assert abs(p.delay(1.0) - (2.5 + 1 - 2) / 2.0) < 1e-9
    assert p.delay(1.0 + 0.75) == 0.0  # refilled past the reserve


def simulate(refill: float, capacity: float, seconds: float, demand: float) -> tuple[int, int]:
    """A bucket like ARM's (and the simulator's) and a client that wants ``demand`` requests/s through
    the pacer, one at a time; returns (attempted, refused)."""
    p, tokens, now, attempted, refused = Pacer(), capacity, 0.0, 0, 0
    step = 1.0 / demand
    while now < seconds:
        wait = p.delay(now)
        now += max(wait, step)
        tokens = min(capacity, tokens + refill * max(wait, step))
        p.sending()
        attempted += 1
        if tokens >= 1:
            tokens -= 1
            p.answered(int(tokens), now, accepted=True)
        else:
            refused += 1
            p.answered(0, now, accepted=False)
    return attempted, refused


def test_a_fleet_wanting_ten_times_the_budget_is_paced_to_it():
    """A tenth of ARM's read budget (25 + 150/min), a client wanting 25 reads/s for two minutes."""
    attempted, refused = simulate(refill=2.5, capacity=25, seconds=120, demand=25.0)
    allowed = 25 + 2.5 * 120
    assert attempted <= 1.2 * allowed, (attempted, allowed)
    assert refused <= 0.05 * attempted, (refused, attempted)
    assert attempted >= 0.8 * allowed  # and the budget is used, not wasted


def test_the_refill_rate_is_learnt():
    p = Pacer()
    p.answered(250, 0.0, accepted=True)
    p.answered(100, 1.0, accepted=True)  # window starts below the peak
    for i in range(1, 11):  # 10 accepted requests in 10 s and remaining +40: refill 5/s
        p.answered(100 + 4 * i, 1.0 + i, accepted=True)
    assert p.rate is not None and 4.0 <= p.rate <= 6.0
