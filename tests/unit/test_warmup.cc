// Warm-up's working set: the list the warm-up script answers, its mapping
// to a new master's release, the compile request and its answer.
#include <catch2/catch.hpp>

#include "warmup.h"

using namespace fpmr;

TEST_CASE("a script list keeps absolute plain paths and counts the rest", "[warmup]") {
    ScriptList l = parse_script_list(
        "/srv/app/releases/r1/index.php\n"
        "/srv/app/releases/r1/src/A.php\r\n"
        "\n"
        "relative/b.php\n"
        "/srv/app/releases/r1/../r0/x.php\n"
        "/srv/app/./y.php\n"
        "/srv/app/releases/r1/..hidden.php\n"
        + std::string("/nul\0.php\n", 10) +
        "/" + std::string(kMaxScriptPathLength, 'a') + "\n"
        "/last.php");
    CHECK(l.scripts == std::vector<std::string>{"/srv/app/releases/r1/index.php",
                                                "/srv/app/releases/r1/src/A.php",
                                                "/srv/app/releases/r1/..hidden.php", "/last.php"});
    CHECK(l.rejected == 5);
    CHECK_FALSE(l.truncated);
    CHECK(parse_script_list("").scripts.empty());
    CHECK(parse_script_list("/..\n/.\n").rejected == 2);
    CHECK(parse_script_list("/a\rb.php\n").rejected == 1);
}

TEST_CASE("a script list stops at the most scripts a working set holds", "[warmup]") {
    std::string body;
    for (size_t i = 0; i < kMaxWarmupScripts + 5; ++i) body += "/app/s" + std::to_string(i) + ".php\n";
    ScriptList l = parse_script_list(body);
    CHECK(l.scripts.size() == kMaxWarmupScripts);
    CHECK(l.truncated);
    CHECK(l.scripts.back() == "/app/s" + std::to_string(kMaxWarmupScripts - 1) + ".php");
}

TEST_CASE("realpath mode maps the old release's scripts into the new release", "[warmup]") {
    std::vector<std::string> cached = {
        "/srv/app/releases/r1/index.php",
        "/srv/app/releases/r1/vendor/autoload.php",
        "/usr/share/php/Twig/Environment.php",  // a library outside the release
        "/srv/app/releases/r10/other.php",      // a sibling directory with the same prefix
        "/srv/app/releases/r1",                 // the directory itself
        "/srv/app/releases/r1/index.php",       // twice
        "relative.php",
        "/usr/share/../../etc/x.php",
    };
    // The same master compiles another release: it has the library already.
    CHECK(map_working_set(cached, "/srv/app/releases/r1", "/srv/app/releases/r2/", "",
                          SharedScripts::kDrop) ==
          std::vector<std::string>{"/srv/app/releases/r2/index.php",
                                   "/srv/app/releases/r2/vendor/autoload.php"});
    // A new master: the library too, as it is; the other release's script not.
    CHECK(map_working_set(cached, "/srv/app/releases/r1", "/srv/app/releases/r2/", "",
                          SharedScripts::kKeep) ==
          std::vector<std::string>{"/srv/app/releases/r2/index.php",
                                   "/srv/app/releases/r2/vendor/autoload.php",
                                   "/usr/share/php/Twig/Environment.php"});
    // A restart on the same release keeps the paths.
    CHECK(map_working_set(cached, "/srv/app/releases/r1/", "/srv/app/releases/r1", "",
                          SharedScripts::kKeep) ==
          std::vector<std::string>{"/srv/app/releases/r1/index.php",
                                   "/srv/app/releases/r1/vendor/autoload.php",
                                   "/usr/share/php/Twig/Environment.php"});
    // Releases in different directories: neither's other scripts are shared.
    CHECK(map_working_set({"/a/releases/r1/x.php", "/b/releases/r0/y.php", "/a/releases/r0/z.php"},
                          "/a/releases/r1", "/b/releases/r2", "", SharedScripts::kKeep) ==
          std::vector<std::string>{"/b/releases/r2/x.php"});
    // No release known on either side: nothing to map.
    for (SharedScripts shared : {SharedScripts::kKeep, SharedScripts::kDrop}) {
        CHECK(map_working_set(cached, "", "/srv/app/releases/r2", "", shared).empty());
        CHECK(map_working_set(cached, "/srv/app/releases/r1", "", "", shared).empty());
        CHECK(map_working_set(cached, "/", "/srv/app/releases/r2", "", shared).empty());
        CHECK(map_working_set(cached, "/srv/app/releases/r1", "/srv/x/../y", "", shared).empty());
        // A line break would split one path into two lines of a compile request.
        CHECK(map_working_set(cached, "/srv/app/releases/r1", "/srv/app/r2\n/etc", "", shared).empty());
    }
}

TEST_CASE("namespace mode keeps the scripts under the stable path", "[warmup]") {
    std::vector<std::string> cached = {
        "/srv/app/live/index.php", "/srv/app/live/lib/a.php", "/srv/app/liveX/b.php",
        "/srv/app/releases/r1/c.php", "/usr/share/fpm-replica/warmup.php",
    };
    // The releases do not matter: every master sees its own under /srv/app/live.
    CHECK(map_working_set(cached, "/srv/app/releases/r1", "/srv/app/releases/r2", "/srv/app/live/",
                          SharedScripts::kDrop) ==
          std::vector<std::string>{"/srv/app/live/index.php", "/srv/app/live/lib/a.php"});
    // A new master: what lies outside both the stable path and the releases too.
    CHECK(map_working_set(cached, "/srv/app/releases/r1", "/srv/app/releases/r2", "/srv/app/live/",
                          SharedScripts::kKeep) ==
          std::vector<std::string>{"/srv/app/live/index.php", "/srv/app/live/lib/a.php",
                                   "/srv/app/liveX/b.php", "/usr/share/fpm-replica/warmup.php"});
    CHECK(map_working_set(cached, "", "", "/srv/app/live", SharedScripts::kDrop).size() == 2);
}

TEST_CASE("the list and compile requests of the warm-up script", "[warmup]") {
    FcgiRequest list = warmup_list_request("/usr/share/fpm-replica/warmup.php");
    CHECK(list.method == "GET");
    CHECK(list.path == "/usr/share/fpm-replica/warmup.php");
    CHECK(list.query == "action=list");
    CHECK(list.body.empty());

    size_t included = 0;
    FcgiRequest c = warmup_compile_request("/w.php", {"/a/x.php", "/a/y.php"}, 1500, &included);
    CHECK(c.method == "POST");
    CHECK(c.query == "action=compile&deadline_ms=1500");
    CHECK(c.body == "/a/x.php\n/a/y.php\n");
    CHECK(included == 2);
    CHECK(warmup_compile_request("/w.php", {}, -5).query == "action=compile&deadline_ms=1");

    // The body stays under PHP's post_max_size: whole lines, up to the bound.
    std::vector<std::string> long_paths(kMaxWarmupScripts, "/" + std::string(kMaxScriptPathLength - 1, 'p'));
    FcgiRequest big = warmup_compile_request("/w.php", long_paths, 1000, &included);
    CHECK(big.body.size() <= kMaxCompileBodyBytes);
    CHECK(included == kMaxCompileBodyBytes / (kMaxScriptPathLength + 1));
    CHECK(big.body.size() == included * (kMaxScriptPathLength + 1));
}

TEST_CASE("the compile answer", "[warmup]") {
    auto r = parse_compile_answer(
        "compiled 412 skipped 3 errors 1 uncached 4 warnings 2 elapsed_ms 87 timed_out 0\n");
    REQUIRE(r);
    CHECK(r->uncached == 4);
    CHECK(r->warnings == 2);
    CHECK(r->compiled == 412);
    CHECK(r->skipped == 3);
    CHECK(r->errors == 1);
    CHECK(r->elapsed_ms == 87);
    CHECK_FALSE(r->timed_out);

    auto minimal = parse_compile_answer("compiled 0 skipped 0");
    REQUIRE(minimal);
    CHECK(minimal->errors == 0);
    auto late = parse_compile_answer("compiled 5 skipped 9 timed_out 1 future_field 7\r\nmore");
    REQUIRE(late);
    CHECK(late->timed_out);

    CHECK_FALSE(parse_compile_answer(""));
    CHECK_FALSE(parse_compile_answer("compiled 5"));
    CHECK_FALSE(parse_compile_answer("skipped 5"));
    CHECK_FALSE(parse_compile_answer("compiled -1 skipped 0"));
    CHECK_FALSE(parse_compile_answer("compiled 1x skipped 0"));
    CHECK_FALSE(parse_compile_answer("compiled 1 skipped"));
    CHECK_FALSE(parse_compile_answer("compiled 1 skipped 0 timed_out 2"));
    CHECK_FALSE(parse_compile_answer("compiled 99999999999999 skipped 0"));
    CHECK_FALSE(parse_compile_answer("<br />\n<b>Warning</b>: ..."));
}
