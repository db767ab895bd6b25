// The status page for people: every value escaped, one row and three
// buttons per replica, the CSP nonce on its only style and script, and no
// reference to anything outside the page.
#include <catch2/catch.hpp>

#include <regex>

#include "status_html.h"

using namespace fpmr;

namespace {

VhostStatus two_replicas() {
    VhostStatus v;
    v.vhost = "app.local:8080";
    v.nonce = "0123456789abcdef0123456789abcdef";
    v.release = "/srv/app/releases/r2";
    v.previous_release = "/srv/app/releases/r1";
    ReplicaStatus a;
    a.name = "a";
    a.socket = "unix:/run/a.sock";
    a.state = ReplicaState::Draining;
    a.admin_drained = true;
    a.reason = "drained by the operator";
    a.pid = 1234;
    a.in_flight = 3;
    a.requests = 10234;
    a.failures = 5;
    a.restarts = 2;
    a.warmup = ReplicaStatus::Warmup{412, 0.25};
    ReplicaStatus b;
    b.name = "b";
    b.socket = "unix:/run/b.sock";
    b.health = HealthState::Passing;
    b.release = "/srv/app/releases/r2";
    v.replicas = {a, b};
    return v;
}

size_t count(const std::string& text, const std::string& what) {
    size_t n = 0;
    for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
}

bool has(const std::string& text, const std::string& what) { return text.find(what) != std::string::npos; }

}  // namespace

TEST_CASE("html_escape neutralises markup, quotes and ampersands", "[status-html]") {
    CHECK(html_escape("<script>alert(1)</script>") == "&lt;script&gt;alert(1)&lt;/script&gt;");
    CHECK(html_escape("a\"b'c") == "a&quot;b&#39;c");
    CHECK(html_escape("&amp; & &#39;") == "&amp;amp; &amp; &amp;#39;");
    CHECK(html_escape("plain /srv/app r2") == "plain /srv/app r2");
    CHECK(html_escape("") == "");
    CHECK(html_escape(std::string_view("a\0b", 3)) == std::string("a\0b", 3));
}

TEST_CASE("the page shows the vhost, its releases and every replica with its buttons", "[status-html]") {
    VhostStatus v = two_replicas();
    v.prepared_release = "/srv/app/releases/r3";
    v.prepared_state = "ready";
    std::string page = render_status_html(v, "cspnonce123");
    CHECK(has(page, "<title>fpm-replica: app.local:8080</title>"));
    CHECK(has(page, "<dd>realpath</dd>"));
    CHECK(has(page, "<dd>/srv/app/releases/r2</dd>"));
    CHECK(has(page, "<dd>/srv/app/releases/r1</dd>"));
    CHECK(has(page, "<dd>/srv/app/releases/r3 (ready)</dd>"));
    CHECK(count(page, "<tr data-replica=") == 2);
    CHECK(has(page, "<tr data-replica=\"a\">"));
    CHECK(has(page, "<tr data-replica=\"b\">"));
    for (const char* action : {"drain", "undrain", "restart"}) {
        CHECK(count(page, std::string("<button type=\"button\" data-action=\"") + action + "\"") == 2);
        CHECK(has(page, std::string("data-action=\"") + action + "\" data-replica=\"a\""));
        CHECK(has(page, std::string("data-action=\"") + action + "\" data-replica=\"b\""));
    }
    // a is drained: Drain would do nothing, Undrain would; b the other way round.
    CHECK(has(page, "data-action=\"drain\" data-replica=\"a\" data-idle=\"true\" disabled>Drain"));
    CHECK(has(page, "data-action=\"undrain\" data-replica=\"a\" data-idle=\"false\">Undrain"));
    CHECK(has(page, "data-action=\"drain\" data-replica=\"b\" data-idle=\"false\">Drain"));
    CHECK(has(page, "class=\"badge state-draining\">draining<"));
    CHECK(has(page, "class=\"badge state-ready\">ready<"));
    CHECK(has(page, "class=\"badge admin-drained\">drained<"));
    CHECK(has(page, "class=\"badge health-passing\">passing<"));
    CHECK(has(page, "drained by the operator"));
    // The in-flight bar: relative to the busiest replica (a, 3).
    CHECK(has(page, "<meter min=\"0\" max=\"3\" value=\"3\""));
    CHECK(has(page, "<meter min=\"0\" max=\"3\" value=\"0\""));
    CHECK(has(page, "412 scripts, 0.25 s"));
    for (const char* figure : {">1234<", ">10234<", ">5<", ">2<"}) CHECK(has(page, figure));
}

TEST_CASE("an idle vhost's bars have a scale of 1", "[status-html]") {
    VhostStatus v = two_replicas();
    v.replicas[0].in_flight = 0;
    CHECK(count(render_status_html(v, "n"), "<meter min=\"0\" max=\"1\" value=\"0\"") == 2);
}

TEST_CASE("the CSP nonce is on the page's only style and script; the control nonce in data-", "[status-html]") {
    std::string page = render_status_html(two_replicas(), "cspnonce123");
    CHECK(count(page, "<style") == 1);
    CHECK(count(page, "<script") == 1);
    CHECK(has(page, "<style nonce=\"cspnonce123\">"));
    CHECK(has(page, "<script nonce=\"cspnonce123\">"));
    CHECK(has(page, "<body data-control-nonce=\"0123456789abcdef0123456789abcdef\">"));
    // Inline style attributes and event handlers would be blocked by the CSP.
    CHECK_FALSE(has(page, " style="));
    CHECK_FALSE(std::regex_search(page, std::regex(" on[a-z]+=")));
}

TEST_CASE("the page refers to nothing outside itself", "[status-html]") {
    std::string page = render_status_html(two_replicas(), "n");
    CHECK_FALSE(has(page, "http://"));
    CHECK_FALSE(has(page, "https://"));
    CHECK_FALSE(has(page, "//cdn"));
    CHECK_FALSE(has(page, " src="));
    CHECK_FALSE(has(page, " href="));
    CHECK_FALSE(has(page, "<link"));
    CHECK_FALSE(has(page, "@import"));
    CHECK_FALSE(has(page, "url("));
}

TEST_CASE("hostile names, paths and nonces are escaped everywhere", "[status-html]") {
    VhostStatus v = two_replicas();
    v.vhost = "<script>alert('v')</script>";
    v.release = "/srv/\"><img src=x>";
    v.nonce = "\" onmouseover=\"x";
    v.replicas[0].name = "a\"><script>alert(1)</script>&";
    v.replicas[0].socket = "unix:/run/<b>.sock";
    v.replicas[0].reason = "it's <broken> & \"bad\"";
    v.replicas[1].release = "</td></tr></table><script>";
    std::string page = render_status_html(v, "\"><script>x</script>");
    CHECK(count(page, "<script") == 1);  // only the page's own
    CHECK_FALSE(has(page, "<img"));
    CHECK_FALSE(has(page, "<b>"));
    CHECK(has(page, "title=\"unix:/run/&lt;b&gt;.sock\""));
    CHECK_FALSE(has(page, "</td></tr></table><script>"));
    CHECK(has(page, "<title>fpm-replica: &lt;script&gt;alert(&#39;v&#39;)&lt;/script&gt;</title>"));
    CHECK(has(page, "data-control-nonce=\"&quot; onmouseover=&quot;x\""));
    CHECK(has(page, "<script nonce=\"&quot;&gt;&lt;script&gt;x&lt;/script&gt;\">"));
    CHECK(has(page, "<tr data-replica=\"a&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;&amp;\">"));
    CHECK(has(page, "data-action=\"drain\" data-replica=\"a&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;&amp;\""));
    CHECK(has(page, "it&#39;s &lt;broken&gt; &amp; &quot;bad&quot;"));
    CHECK(has(page, "/srv/&quot;&gt;&lt;img src=x&gt;"));
}

TEST_CASE("the releases table shows each release's figures, escaped", "[status-html]") {
    VhostStatus v = two_replicas();
    CHECK_FALSE(has(render_status_html(v, "n"), "<table id=\"releases\">"));  // none: no table
    ReleaseUse current;
    current.release = "/srv/app/releases/r2";
    current.in_flight = 4;
    current.requests = 120;
    current.server_errors = 3;
    current.replicas = {"a", "b"};
    ReleaseUse hostile;
    hostile.release = "/srv/</td><script>x</script>";
    hostile.in_flight = -7;  // forged in the open block: shown as 0
    v.releases = {current, hostile};
    std::string page = render_status_html(v, "n");
    CHECK(has(page, "<table id=\"releases\">"));
    CHECK(has(page, "<td class=\"path\">/srv/app/releases/r2</td><td class=\"number\">4</td>"
                    "<td class=\"number\">120</td><td class=\"number\">3</td><td>a, b</td>"));
    CHECK(has(page, "/srv/&lt;/td&gt;&lt;script&gt;x&lt;/script&gt;</td><td class=\"number\">0</td>"));
    CHECK(count(page, "<script") == 1);
}
