#include "status_html.h"

#include <algorithm>
#include <cstdio>

namespace fpmr {

std::string html_escape(std::string_view text) {
    std::string out;
    out.reserve(text.size() + text.size() / 8);
    for (char c : text) {
        switch (c) {
            case '&': out += "&amp;"; break;
            case '<': out += "&lt;"; break;
            case '>': out += "&gt;"; break;
            case '"': out += "&quot;"; break;
            case '\'': out += "&#39;"; break;
            default: out += c;
        }
    }
    return out;
}

namespace {

constexpr const char* kNone = "\xe2\x80\x94";  // an em dash: no value

// Every rule the page needs. The meter carries the in-flight bar, so no
// element needs a style attribute (which a nonce cannot allow).
constexpr const char* kStyle = R"css(
:root { color-scheme: light dark; --ok: #1a7f37; --warn: #9a6700; --bad: #cf222e;
        --info: #0969da; --idle: #6e7781; --line: #d0d7de; }
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; }
h1 { font-size: 1.4em; margin: 0 0 .5em; }
h1 .vhost { font-family: ui-monospace, monospace; }
dl.summary { display: grid; grid-template-columns: max-content auto; gap: .2em 1em; margin: 0 0 1em; }
dl.summary dt { font-weight: 600; }
dl.summary dd { margin: 0; font-family: ui-monospace, monospace; overflow-wrap: anywhere; }
table { border-collapse: collapse; width: 100%; }
th, td { border-bottom: 1px solid var(--line); padding: .35em .5em; text-align: left; vertical-align: top; }
th { font-weight: 600; white-space: nowrap; }
table#releases { width: auto; min-width: 50%; }
th.number { text-align: right; }
td.number { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.path { font-family: ui-monospace, monospace; overflow-wrap: break-word; }
.name { font-weight: 600; }
.badge { display: inline-block; padding: 0 .55em; border-radius: 1em; color: #fff; font-size: .85em;
         font-weight: 600; background: var(--idle); }
.state-ready, .health-passing { background: var(--ok); }
.state-starting { background: var(--info); }
.state-draining, .admin-drained { background: var(--warn); }
.state-failed, .health-failing { background: var(--bad); }
.admin-active { background: var(--ok); }
meter { width: 6em; vertical-align: middle; }
td.actions { white-space: nowrap; }
button { margin-right: .3em; }
#message { min-height: 1.4em; font-weight: 600; }
#message.failed { color: var(--bad); }
footer { margin-top: 1em; color: var(--idle); font-size: .85em; }
)css";

// Buttons POST to the page's own path with the control nonce in the header
// the handler checks; a browser adds the Origin (and, under Referrer-Policy
// same-origin, the Referer) the handler compares with the Host, so the page
// passes exactly the checks a cross-site page cannot. The page reloads
// itself every few seconds, but not while a request is on its way.
constexpr const char* kScript = R"js(
(function () {
  'use strict';
  var refreshMilliseconds = 5000;
  var controlNonce = document.body.dataset.controlNonce;
  var message = document.getElementById('message');
  var busy = false;
  // The last answer, carried over the reload that shows its effect. Storage
  // may be refused (blocked site data): the page then works without it.
  var carriedKey = 'fpm-replica-message';
  try {
    var carried = sessionStorage.getItem(carriedKey);
    if (carried !== null) {
      sessionStorage.removeItem(carriedKey);
      message.textContent = carried;
    }
  } catch (ignored) {}
  setInterval(function () { if (!busy) location.reload(); }, refreshMilliseconds);
  var buttons = document.querySelectorAll('button[data-action]');
  function setEnabled(enabled) {
    buttons.forEach(function (b) { b.disabled = !enabled || b.dataset.idle === 'true'; });
  }
  function report(text, failed) {
    message.textContent = text;
    message.className = failed ? 'failed' : '';
  }
  buttons.forEach(function (button) {
    button.addEventListener('click', function () {
      var action = button.dataset.action;
      var replica = button.dataset.replica;
      var what = action + ' ' + replica;
      // Draining the last active replica leaves the vhost nothing to serve
      // with: ask first (the CLI does what it is told; a click can slip).
      var active = document.querySelectorAll('button[data-action="drain"][data-idle="false"]').length;
      if (action === 'drain' && active <= 1 &&
          !confirm('Drain ' + replica + ', the last active replica? Its PHP requests then get 503.')) {
        return;
      }
      busy = true;
      setEnabled(false);
      report(what + ': sent', false);
      fetch(location.pathname, {
        method: 'POST',
        cache: 'no-store',
        credentials: 'same-origin',
        headers: {'X-Fpm-Replica-Nonce': controlNonce,
                  'Content-Type': 'application/x-www-form-urlencoded'},
        body: 'action=' + encodeURIComponent(action) + '&replica=' + encodeURIComponent(replica)
      }).then(function (response) {
        return response.json().catch(function () { return {}; }).then(function (answer) {
          var text = what + ': ' + response.status + ' ' +
                     (answer.error ? answer.error : (response.ok ? 'done' : response.statusText));
          if (response.ok) {
            try { sessionStorage.setItem(carriedKey, text); } catch (ignored) {}
            location.reload();
          } else {
            report(text, true);
            busy = false;
            setEnabled(true);
          }
        });
      }).catch(function (error) {
        report(what + ': ' + error, true);
        busy = false;
        setEnabled(true);
      });
    });
  });
})();
)js";

std::string escaped_or_none(const std::optional<std::string>& value) {
    return value ? html_escape(*value) : kNone;
}

std::string fixed(double value, const char* format) {
    char buffer[32];
    std::snprintf(buffer, sizeof buffer, format, value);
    return buffer;
}

void summary_row(std::string& out, const char* term, const std::string& escaped_value) {
    out += "<dt>";
    out += term;
    out += "</dt><dd>" + escaped_value + "</dd>\n";
}

std::string badge(const std::string& kind, const std::string& value) {
    std::string v = html_escape(value);
    return "<span class=\"badge " + kind + "-" + v + "\">" + v + "</span>";
}

std::string number_cell(uint64_t value) {
    return "<td class=\"number\">" + std::to_string(value) + "</td>";
}

std::string button(const char* action, const char* label, const std::string& escaped_name, bool idle) {
    // data-idle: the action would change nothing now (Drain on a drained
    // replica), so the button starts disabled; the script keeps it so.
    return std::string("<button type=\"button\" data-action=\"") + action + "\" data-replica=\"" +
           escaped_name + "\" data-idle=\"" + (idle ? "true" : "false") + "\"" +
           (idle ? " disabled" : "") + ">" + label + "</button>";
}

void replica_row(std::string& out, const ReplicaStatus& r, int64_t in_flight_scale) {
    const std::string name = html_escape(r.name);
    out += "<tr data-replica=\"" + name + "\">";
    // The socket as the name's tooltip: long paths would crowd the table.
    out += "<td class=\"name\" title=\"" + html_escape(r.socket) + "\">" + name + "</td>";
    out += "<td>" + badge("state", state_name(r.state)) + "</td>";
    out += "<td>" + badge("admin", r.admin_drained ? "drained" : "active") + "</td>";
    out += "<td>" + badge("health", health_name(r.health));
    if (r.check_seconds) out += " <small>" + fixed(*r.check_seconds * 1000, "%.1f") + " ms</small>";
    out += "</td>";
    out += "<td>" + escaped_or_none(r.reason) + "</td>";
    const std::string in_flight = std::to_string(r.in_flight < 0 ? 0 : r.in_flight);
    out += "<td class=\"number\"><meter min=\"0\" max=\"" + std::to_string(in_flight_scale) +
           "\" value=\"" + in_flight + "\" title=\"" + in_flight + " in flight\">" + in_flight +
           "</meter> " + in_flight + "</td>";
    out += "<td class=\"path\">" + escaped_or_none(r.release) + "</td>";
    out += "<td class=\"number\">" + (r.pid ? std::to_string(*r.pid) : std::string(kNone)) + "</td>";
    out += number_cell(r.requests) + number_cell(r.failures) + number_cell(r.restarts);
    out += "<td>";
    if (r.warmup) {
        out += std::to_string(r.warmup->scripts) + " scripts, " + fixed(r.warmup->seconds, "%.2f") + " s";
    } else {
        out += kNone;
    }
    out += "</td>";
    out += "<td class=\"actions\">" + button("drain", "Drain", name, r.admin_drained) +
           button("undrain", "Undrain", name, !r.admin_drained) +
           button("restart", "Restart", name, false) + "</td>";
    out += "</tr>\n";
}

}  // namespace

std::string render_status_html(const VhostStatus& status, std::string_view csp_nonce) {
    const std::string nonce = html_escape(csp_nonce);
    const std::string vhost = html_escape(status.vhost);
    // The bars are relative to the busiest replica, at least 1 so an idle
    // vhost shows empty bars rather than a division by zero.
    int64_t in_flight_scale = 1;
    for (const auto& r : status.replicas) in_flight_scale = std::max(in_flight_scale, r.in_flight);

    std::string out;
    out.reserve(8192 + status.replicas.size() * 1024);
    out += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
           "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
    out += "<title>fpm-replica: " + vhost + "</title>\n";
    out += "<style nonce=\"" + nonce + "\">" + kStyle + "</style>\n</head>\n";
    out += "<body data-control-nonce=\"" + html_escape(status.nonce) + "\">\n";
    out += "<h1>fpm-replica <span class=\"vhost\">" + vhost + "</span></h1>\n";
    out += "<dl class=\"summary\">\n";
    summary_row(out, "mode", status.namespace_mode ? "namespace" : "realpath");
    summary_row(out, "release", escaped_or_none(status.release));
    if (status.release_link) summary_row(out, "release link", html_escape(*status.release_link));
    summary_row(out, "previous release", escaped_or_none(status.previous_release));
    if (status.prepared_release) {
        summary_row(out, "prepared release",
                    html_escape(*status.prepared_release) + " (" + html_escape(status.prepared_state) + ")");
    }
    out += "</dl>\n";
    out += "<p id=\"message\" role=\"status\" aria-live=\"polite\"></p>\n";
    out += "<table id=\"replicas\">\n<thead><tr><th>replica</th><th>state</th><th>admin</th>"
           "<th>health</th><th>reason</th><th>in flight</th><th>release</th><th>pid</th>"
           "<th>requests</th><th>failures</th><th>restarts</th><th>warm-up</th><th>actions</th>"
           "</tr></thead>\n<tbody>\n";
    for (const auto& r : status.replicas) replica_row(out, r, in_flight_scale);
    out += "</tbody>\n</table>\n";
    if (!status.releases.empty()) {
        // What `fpm-replica releases` and `deploy --watch` read.
        out += "<h2>Releases</h2>\n<table id=\"releases\">\n<thead><tr><th>release</th><th>in flight</th>"
               "<th>PHP answers</th><th>5xx</th><th>masters</th></tr></thead>\n<tbody>\n";
        for (const auto& use : status.releases) {
            std::string masters;
            for (const auto& name : use.replicas) masters += (masters.empty() ? "" : ", ") + html_escape(name);
            out += "<tr><td class=\"path\">" + html_escape(use.release) + "</td>" +
                   number_cell(static_cast<uint64_t>(use.in_flight < 0 ? 0 : use.in_flight)) +
                   number_cell(use.requests) + number_cell(use.server_errors) + "<td>" +
                   (masters.empty() ? std::string(kNone) : masters) + "</td></tr>\n";
        }
        out += "</tbody>\n</table>\n";
    }
    out += "<footer>Refreshes every 5 s. The same document as JSON: <code>?format=json</code>; "
           "as Prometheus text: <code>?format=prometheus</code>.</footer>\n";
    out += "<script nonce=\"" + nonce + "\">" + kScript + "</script>\n</body>\n</html>\n";
    return out;
}

}  // namespace fpmr
