// Release resolution against a real directory tree: relative, absolute and
// chained links, dangling links, non-directories, the reuse interval, and
// concurrent flips (no torn or foreign answer).
#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "release_resolver.h"

using namespace fpmr;

namespace {

struct TempTree {
    std::string root;
    TempTree() {
        char tmpl[] = "/tmp/fpmr-unit-XXXXXX";
        root = mkdtemp(tmpl);
        char* real = realpath(root.c_str(), nullptr);
        root = real;
        free(real);
    }
    ~TempTree() { std::system(("rm -rf '" + root + "'").c_str()); }
    std::string mkdir(const std::string& rel) {
        std::string p = root + "/" + rel;
        std::system(("mkdir -p '" + p + "'").c_str());
        return p;
    }
    // Atomic flip, as deploy tools do: new link beside, then rename over.
    void link(const std::string& target, const std::string& rel) {
        std::string tmp = root + "/" + rel + ".tmp";
        unlink(tmp.c_str());
        REQUIRE(symlink(target.c_str(), tmp.c_str()) == 0);
        REQUIRE(rename(tmp.c_str(), (root + "/" + rel).c_str()) == 0);
    }
};

}  // namespace

TEST_CASE("relative, absolute and chained release links resolve to real paths", "[release]") {
    TempTree t;
    std::string r1 = t.mkdir("releases/r1");
    std::string r2 = t.mkdir("releases/r2");
    t.link("releases/r1", "current");
    ReleaseResolver res(t.root + "/current", 0);
    auto a = res.resolve(1);
    REQUIRE(a->ok);
    CHECK(a->release_dir == r1);
    CHECK(a->link_target == t.root + "/releases/r1");

    t.link(r2, "current");  // absolute target
    auto b = res.resolve(2);
    REQUIRE(b->ok);
    CHECK(b->release_dir == r2);

    t.link("releases/r1", "stage");  // chain: current -> stage -> releases/r1
    t.link("stage", "current");
    auto c = res.resolve(3);
    REQUIRE(c->ok);
    CHECK(c->release_dir == r1);
}

TEST_CASE("dangling, missing and non-directory targets fail with a reason", "[release]") {
    TempTree t;
    t.mkdir("releases/r1");
    ReleaseResolver missing(t.root + "/current", 0);
    auto m = missing.resolve(1);
    CHECK_FALSE(m->ok);
    CHECK(m->error.find("cannot be read") != std::string::npos);

    t.link("releases/gone", "current");
    ReleaseResolver dangling(t.root + "/current", 0);
    auto d = dangling.resolve(1);
    CHECK_FALSE(d->ok);
    CHECK(d->error.find("is dangling") != std::string::npos);

    FILE* f = std::fopen((t.root + "/releases/file").c_str(), "w");
    std::fclose(f);
    t.link("releases/file", "current");
    auto nd = dangling.resolve(2);
    CHECK_FALSE(nd->ok);
    CHECK(nd->error.find("not a directory") != std::string::npos);

    // Recovers by itself once the link is fixed.
    t.link("releases/r1", "current");
    auto ok = dangling.resolve(3);
    CHECK(ok->ok);
}

TEST_CASE("a plain directory is its own release", "[release]") {
    TempTree t;
    std::string dir = t.mkdir("app");
    ReleaseResolver res(dir, 0);
    auto r = res.resolve(1);
    REQUIRE(r->ok);
    CHECK(r->release_dir == dir);
}

TEST_CASE("interval 0 sees a flip at once; a reuse interval delays it", "[release]") {
    TempTree t;
    std::string r1 = t.mkdir("releases/r1");
    std::string r2 = t.mkdir("releases/r2");
    t.link("releases/r1", "current");
    ReleaseResolver now(t.root + "/current", 0);
    ReleaseResolver cached(t.root + "/current", 5000000);
    CHECK(now.resolve(1000)->release_dir == r1);
    CHECK(cached.resolve(1000)->release_dir == r1);
    t.link("releases/r2", "current");
    CHECK(now.resolve(1001)->release_dir == r2);
    CHECK(cached.resolve(2000)->release_dir == r1);          // within the interval
    CHECK(cached.resolve(1000 + 5000000)->release_dir == r2);  // after it
}

TEST_CASE("a deleted release behind an unchanged link is noticed on revalidation", "[release]") {
    TempTree t;
    t.mkdir("releases/r1");
    t.link("releases/r1", "current");
    ReleaseResolver res(t.root + "/current", 0);
    REQUIRE(res.resolve(1)->ok);
    std::system(("rm -rf '" + t.root + "/releases/r1'").c_str());
    CHECK(res.resolve(2)->ok);  // one readlink, target unchanged: cached
    CHECK_FALSE(res.resolve(2 + ReleaseResolver::kRevalidateUs)->ok);
}

TEST_CASE("errors are logged once per interval", "[release]") {
    ReleaseResolver res("/nonexistent/current", 0);
    CHECK(res.should_log_error(10));
    CHECK_FALSE(res.should_log_error(20));
    CHECK_FALSE(res.should_log_error(10 + 999999));
    CHECK(res.should_log_error(10 + 1000000));
}

TEST_CASE("resolvers sharing an error-log clock log once between them", "[release]") {
    std::atomic<int64_t> shared_clock{0};
    ReleaseResolver one("/nonexistent/current", 0), two("/nonexistent/current", 0);
    one.set_error_log_clock(&shared_clock);
    two.set_error_log_clock(&shared_clock);
    CHECK(one.should_log_error(10));
    CHECK_FALSE(two.should_log_error(11));
    CHECK(two.should_log_error(10 + 1000000));
    CHECK_FALSE(one.should_log_error(10 + 1000001));
}

TEST_CASE("concurrent flips: every answer is a whole, real release", "[release][stress]") {
    TempTree t;
    std::string r1 = t.mkdir("releases/r1");
    std::string r2 = t.mkdir("releases/r2");
    t.link("releases/r1", "current");
    ReleaseResolver res(t.root + "/current", 0);
    std::atomic<bool> stop{false};
    std::atomic<long> bad{0}, seen1{0}, seen2{0};
    std::vector<std::thread> readers;
    for (int i = 0; i < 8; ++i) {
        readers.emplace_back([&, i] {
            int64_t clock = i;
            while (!stop) {
                auto r = res.resolve(clock += 8);
                if (!r->ok) ++bad;
                else if (r->release_dir == r1) ++seen1;
                else if (r->release_dir == r2) ++seen2;
                else ++bad;
            }
        });
    }
    for (int flip = 0; flip < 2000; ++flip) t.link(flip % 2 ? "releases/r1" : "releases/r2", "current");
    stop = true;
    for (auto& th : readers) th.join();
    CHECK(bad == 0);
    CHECK(seen1 > 0);
    CHECK(seen2 > 0);
}

TEST_CASE("path helpers", "[release]") {
    CHECK(normalize_absolute_path("/srv//app/current/") == "/srv/app/current");
    CHECK(normalize_absolute_path("/") == "/");
    CHECK(normalize_absolute_path("srv/app").empty());
    CHECK(normalize_absolute_path("/srv/../etc").empty());
    CHECK(normalize_absolute_path("/srv/./app").empty());
    CHECK(is_normalized_absolute_path("/srv/app"));
    CHECK_FALSE(is_normalized_absolute_path("/srv/app/"));
    CHECK(path_is_under("/srv/app/current/public", "/srv/app/current"));
    CHECK(path_is_under("/srv/app/current", "/srv/app/current"));
    CHECK_FALSE(path_is_under("/srv/app/current2", "/srv/app/current"));
    CHECK_FALSE(path_is_under("/srv/app", "/srv/app/current"));
    CHECK(path_is_under("/x", "/"));
    CHECK(rebase_path("/srv/app/current/public/x.php", "/srv/app/current", "/srv/r/2") ==
          "/srv/r/2/public/x.php");
    CHECK(rebase_path("/srv/app/current", "/srv/app/current", "/srv/r/2") == "/srv/r/2");
    CHECK(rebase_path("/x/y", "/", "/r") == "/r/x/y");
}

TEST_CASE("a prepared release must be a release beside the current one", "[release]") {
    TempTree t;
    std::string r1 = t.mkdir("app/releases/r1");
    std::string r2 = t.mkdir("app/releases/r2");
    t.mkdir("app/shared");
    t.mkdir("other/releases/x");
    t.link("releases/r1", "app/current");
    t.link("../other/releases/x", "app/releases/sneaky");
    std::string link = t.root + "/app/current";
    std::string why;
    CHECK(validate_prepared_release(link, r2, &why) == r2);
    CHECK(validate_prepared_release(link, t.root + "/app/releases/r2/", &why) == r2);
    CHECK(validate_prepared_release(link, r1, &why) == r1);
    CHECK_FALSE(validate_prepared_release(link, "/etc", &why));
    CHECK(why.find("is not a directory in " + t.root + "/app/releases") != std::string::npos);
    CHECK_FALSE(validate_prepared_release(link, t.root + "/app/shared", &why));
    CHECK_FALSE(validate_prepared_release(link, t.root + "/app/releases", &why));
    CHECK_FALSE(validate_prepared_release(link, t.root + "/app/releases/sneaky", &why));  // a link out
    CHECK_FALSE(validate_prepared_release(link, t.root + "/app/releases/missing", &why));
    CHECK(why.find("is dangling") != std::string::npos);
    CHECK_FALSE(validate_prepared_release(link, "releases/r2", &why));
    CHECK(why.find("not an absolute path") != std::string::npos);
    CHECK_FALSE(validate_prepared_release(link, "", &why));
    t.link("releases/gone", "app/current");
    CHECK_FALSE(validate_prepared_release(link, r2, &why));
    CHECK(why.find("nothing to prepare against") != std::string::npos);
}
