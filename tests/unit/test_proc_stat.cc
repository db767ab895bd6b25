// /proc/PID/stat parsing and the identity rules every signal to a master obeys.
#include <catch2/catch.hpp>

#include <unistd.h>

#include "proc_stat.h"

using namespace fpmr;

namespace {
// Fields 1..22 of a stat line; the command name holds spaces and ')'.
std::string stat_line(const std::string& comm, char state, int ppid, int pgrp, int session,
                      unsigned long long start) {
    return "4242 (" + comm + ") " + state + " " + std::to_string(ppid) + " " + std::to_string(pgrp) +
           " " + std::to_string(session) + " 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 " +
           std::to_string(start) + " 1000 200 18446744073709551615\n";
}
}  // namespace

TEST_CASE("a stat line is read after the last parenthesis", "[proc]") {
    auto st = parse_proc_stat(stat_line("php-fpm: master (x) y", 'S', 1, 4242, 4242, 987654));
    REQUIRE(st);
    CHECK(st->state == 'S');
    CHECK(st->ppid == 1);
    CHECK(st->pgrp == 4242);
    CHECK(st->session == 4242);
    CHECK(st->start_time == 987654);
    CHECK_FALSE(st->exited());
    CHECK(parse_proc_stat(stat_line("z", 'Z', 1, 4242, 4242, 5))->exited());
    CHECK_FALSE(parse_proc_stat("4242 no parenthesis S 1 2 3"));
    CHECK_FALSE(parse_proc_stat("4242 (short) S 1 2"));
    CHECK_FALSE(parse_proc_stat("4242 (bad) S x 2 3 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 5"));
    CHECK_FALSE(parse_proc_stat(""));
}

TEST_CASE("this process's own stat is readable", "[proc]") {
    auto st = read_proc_stat(getpid());
    REQUIRE(st);
    CHECK(st->ppid == getppid());
    CHECK(st->start_time > 0);
    CHECK_FALSE(read_proc_stat(0));
    CHECK_FALSE(read_proc_stat(-1));
}

TEST_CASE("a master is signalled only while it is provably itself", "[proc]") {
    MasterIdentity master{4242, 987654};
    auto same = parse_proc_stat(stat_line("php-fpm", 'S', 1, 4242, 4242, 987654));
    auto zombie = parse_proc_stat(stat_line("php-fpm", 'Z', 1, 4242, 4242, 987654));
    auto reused = parse_proc_stat(stat_line("bash", 'S', 77, 4242, 4242, 999999));
    auto not_leader = parse_proc_stat(stat_line("php-fpm", 'S', 1, 100, 100, 987654));
    CHECK(is_master(master, same));
    CHECK(is_master(master, zombie));
    CHECK_FALSE(is_master(master, reused));       // the pid was reused: someone else
    CHECK_FALSE(is_master(master, not_leader));   // not its own session: its group is not its own
    CHECK_FALSE(is_master(master, std::nullopt));
    CHECK_FALSE(is_master({4242, 0}, same));       // no recorded start time: nothing is proven
    CHECK(may_signal_group(master, same));
    CHECK(may_signal_group(master, zombie));          // the zombie holds the number
    CHECK_FALSE(may_signal_group(master, std::nullopt)); // gone: the number may be anyone's now
    CHECK_FALSE(may_signal_group(master, reused));
    CHECK_FALSE(may_signal_group({1, 987654}, same));   // never init's group (kill(-1) is everyone)
    CHECK_FALSE(may_signal_group({0, 987654}, same));
    CHECK_FALSE(may_signal_group({-5, 987654}, same));
}

TEST_CASE("what a gone master left is told from a new session that reused its number", "[proc]") {
    MasterIdentity master{4242, 1000};
    uint64_t gone_at = 5000;
    auto worker = parse_proc_stat(stat_line("php-fpm: pool app", 'S', 1, 4242, 4242, 1200));
    auto later = parse_proc_stat(stat_line("bash", 'S', 1, 4242, 4242, 6000));
    auto elsewhere = parse_proc_stat(stat_line("php-fpm: pool app", 'S', 1, 77, 77, 1200));
    auto before = parse_proc_stat(stat_line("init-ish", 'S', 0, 4242, 4242, 10));
    CHECK(is_orphaned_worker(master, *worker, gone_at));
    CHECK_FALSE(is_orphaned_worker(master, *later, gone_at));      // started after it was gone
    CHECK_FALSE(is_orphaned_worker(master, *elsewhere, gone_at));  // another session
    CHECK_FALSE(is_orphaned_worker(master, *before, gone_at));     // older than the master
    CHECK_FALSE(is_orphaned_worker({1, 1000}, *worker, gone_at));
    uint64_t now = start_time_clock_now();
    auto self = read_proc_stat(getpid());
    REQUIRE(self);
    CHECK(self->start_time <= now);
}
