"""17 durable owner (issue 17, finding 7): a durable subscription belongs to the login that
made it, also after a restart (log replay, and a checkpoint) and after a failover to a slave.
Before, the owner lived only in memory and the first login to present the client-id and
subscription name after a restart took the subscription and read its messages."""
from owner_support import CHECKPOINTED_TAIL, SUB, USERS, check_owner_kept, make_subscription_and_publish, publish
from tandem_test import Broker, client, new_group, run


def test_owner_survives_a_crash_restart(brokers):
    b = Broker(config={"users": USERS})
    brokers.append(b)
    b.start()
    make_subscription_and_publish(b)
    b.kill()  # no final checkpoint: the restart replays the subscription's record
    b.start()
    assert "from_checkpoint=false" in b.log_text()
    check_owner_kept(b)


def test_owner_survives_a_restart_from_a_checkpoint(brokers):
    b = Broker(config={"users": USERS})
    brokers.append(b)
    b.start()
    make_subscription_and_publish(b)
    p = client(b, login="shop", passcode="shop-pw")
    for i in range(CHECKPOINTED_TAIL):
        p.send("/queue/filler", "x", headers={"persistent": "true"})
    p.send("/queue/filler", "x", headers={"persistent": "true", "receipt": "last"})
    p.collector.wait_receipt("last")
    p.disconnect()
    assert b.stop() == 0
    b.start()
    assert "from_checkpoint=true" in b.log_text(), b.log_text()[-3000:]
    check_owner_kept(b)


def test_owner_survives_a_failover_to_a_slave(brokers):
    master, slave = new_group(brokers, 2, config={"users": USERS})
    make_subscription_and_publish(master)
    master.kill()
    slave.wait_log(r"main master epoch=\d+")
    check_owner_kept(slave)


def test_an_anonymous_subscription_is_claimed_by_the_first_login_for_good(brokers):
    # Unowned (as every subscription of a store from before owners were kept reads): the
    # first login that subscribes claims it, and the claim survives a restart.
    b = Broker(config={"users": USERS, "allow_anonymous": True})
    brokers.append(b)
    b.start()
    c = client(b, headers={"client-id": "shipping-app"})
    c.subscribe("/topic/events", id="t", ack="auto", headers=dict(SUB, receipt="s"))
    c.collector.wait_receipt("s")
    c.disconnect()
    b.kill()
    b.start()
    assert "durable subscription has no owner" in b.log_text(), b.log_text()[-3000:]
    c = client(b, login="shipping", passcode="shipping-pw", headers={"client-id": "shipping-app"})
    c.subscribe("/topic/events", id="t", ack="auto", headers=dict(SUB, receipt="s"))
    c.collector.wait_receipt("s")
    c.disconnect()
    b.wait_log("unowned durable subscription claimed")
    publish(b)
    b.kill()
    b.start()
    assert "durable subscription has no owner" not in b.log_text(), b.log_text()[-3000:]
    check_owner_kept(b)


if __name__ == "__main__":
    run([test_owner_survives_a_crash_restart, test_owner_survives_a_restart_from_a_checkpoint,
         test_owner_survives_a_failover_to_a_slave, test_an_anonymous_subscription_is_claimed_by_the_first_login_for_good])
