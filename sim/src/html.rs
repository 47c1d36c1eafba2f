//! One self-contained HTML file that draws a run (`sim run --html out.html`): a
//! lane per node over time (role as colour, term changes, commit index), the
//! messages as arrows (filterable by kind), faults as shaded spans, client
//! operations as bars, and the operations a linearizability failure names
//! highlighted. The data is embedded as JSON; a small script draws it as SVG
//! when the page loads (no network, no libraries).

use crate::history::History;
use crate::linearizability::Violation;
use crate::timeline::Timeline;
use serde::Serialize;

#[derive(Serialize)]
struct OpBar {
    client: u64,
    text: String,
    invoke_ms: u64,
    complete_ms: Option<u64>,
    outcome: String,
    violation: bool,
}

#[derive(Serialize)]
struct Page<'a> {
    title: &'a str,
    end_ms: u64,
    timeline: &'a Timeline,
    ops: Vec<OpBar>,
    violation: Option<String>,
}

/// Renders the page. `violation` (from the linearizability checker) marks the
/// operations it lists.
pub fn render(
    title: &str,
    end_ms: u64,
    timeline: &Timeline,
    history: &History,
    violation: Option<&Violation>,
) -> String {
    let flagged: Vec<usize> = violation.map(|v| v.op_indices.clone()).unwrap_or_default();
    let ops = history
        .operations()
        .iter()
        .enumerate()
        .map(|(index, op)| OpBar {
            client: op.client,
            text: op.op.to_string(),
            invoke_ms: op.invoke_ms,
            complete_ms: op.complete_ms,
            outcome: op.outcome.to_string(),
            violation: flagged.contains(&index),
        })
        .collect();
    let page =
        Page { title, end_ms, timeline, ops, violation: violation.map(|v| format!("{}: {}", v.key, v.explanation)) };
    // `</` cannot appear inside the script element.
    let data = serde_json::to_string(&page).expect("the page serializes").replace("</", "<\\/");
    let title = escape(title);
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font: 13px system-ui, sans-serif; margin: 12px; }}
#controls label {{ margin-right: 10px; white-space: nowrap; }}
#violation {{ color: #b00020; }} #violation pre {{ white-space: pre-wrap; }}
svg text {{ font: 11px system-ui, sans-serif; }}
.op {{ fill: #9db4d0; }} .op.unknown {{ fill: #d8d8d8; }} .op.violation {{ fill: #e0283a; stroke: #700; }}
.fault {{ fill: #f4b400; fill-opacity: 0.18; }} .msg {{ stroke-width: 0.7; }} .lost {{ stroke-dasharray: 2 2; }}
</style></head>
<body>
<h2>{title}</h2>
<div id="controls"></div>
<details id="violation"><summary></summary><pre></pre></details>
<div style="overflow-x: auto"><svg id="view" xmlns="http://www.w3.org/2000/svg"></svg></div>
<script id="data" type="application/json">{data}</script>
<script>
const page = JSON.parse(document.getElementById('data').textContent);
const svg = document.getElementById('view');
const NS = 'http://www.w3.org/2000/svg';
const left = 70, laneHeight = 56, width = Math.max(1200, Math.min(20000, page.end_ms / 4));
const x = ms => left + (ms / Math.max(1, page.end_ms)) * width;
const lanes = page.timeline.nodes;
const laneY = node => 30 + lanes.indexOf(node) * laneHeight;
const clients = [...new Set(page.ops.map(op => op.client))].sort((a, b) => a - b);
const opsTop = 40 + lanes.length * laneHeight;
const height = opsTop + clients.length * 14 + 30;
svg.setAttribute('width', left + width + 20);
svg.setAttribute('height', height);
function el(name, attrs, parent, text) {{
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text !== undefined) e.textContent = text;
  (parent || svg).appendChild(e);
  return e;
}}
const roleColour = {{ follower: '#e8eef4', 'pre-candidate': '#fff3c4', candidate: '#ffd95a', leader: '#8fd19e', crashed: '#f3b0b0' }};
// Lanes: role segments, term labels, commit index.
for (const node of lanes) {{
  const g = el('g', {{ class: 'lane', 'data-node': node }});
  el('text', {{ x: 4, y: laneY(node) + laneHeight / 2 }}, g, 'n' + node);
  const samples = page.timeline.states.filter(s => s.node === node);
  samples.forEach((s, i) => {{
    const end = i + 1 < samples.length ? samples[i + 1].at_ms : page.end_ms;
    el('rect', {{ class: 'role ' + s.role, x: x(s.at_ms), y: laneY(node), width: Math.max(0.5, x(end) - x(s.at_ms)),
      height: laneHeight - 16, fill: roleColour[s.role] || '#ccc' }}, g).appendChild(
      Object.assign(document.createElementNS(NS, 'title'), {{ textContent: `n${{node}} ${{s.role}} t${{s.term}} commit ${{s.commit}} applied ${{s.applied}}` }}));
    if (i === 0 || samples[i - 1].term !== s.term) el('text', {{ class: 'term', x: x(s.at_ms) + 2, y: laneY(node) + 11 }}, g, 't' + s.term);
  }});
  const maxCommit = Math.max(1, ...page.timeline.states.map(s => s.commit));
  const points = samples.filter(s => s.role !== 'crashed')
    .map(s => `${{x(s.at_ms)}},${{laneY(node) + laneHeight - 17 - (s.commit / maxCommit) * (laneHeight - 30)}}`);
  if (points.length) el('polyline', {{ class: 'commit', points: points.join(' '), fill: 'none', stroke: '#355', 'stroke-width': 1 }}, g);
}}
// Faults as shaded spans: from a fault on a node to the next fault on it (or the end).
const faultsByNode = {{}};
for (const f of page.timeline.faults) for (const n of (f.nodes.length ? f.nodes : lanes)) (faultsByNode[n] = faultsByNode[n] || []).push(f);
for (const [node, faults] of Object.entries(faultsByNode)) {{
  faults.forEach((f, i) => {{
    if (/^(Heal|Connect|Restart|Resume)/.test(f.what)) return;
    const end = i + 1 < faults.length ? faults[i + 1].at_ms : page.end_ms;
    const r = el('rect', {{ class: 'fault', x: x(f.at_ms), y: laneY(Number(node)) - 2, width: Math.max(1, x(end) - x(f.at_ms)), height: laneHeight - 12 }});
    r.appendChild(Object.assign(document.createElementNS(NS, 'title'), {{ textContent: f.what + ' at ' + f.at_ms + ' ms' }}));
  }});
}}
// Messages as arrows, one group per kind (the filter hides groups).
const kinds = [...new Set(page.timeline.messages.map(m => m.kind))].sort();
const palette = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf', '#393b79', '#637939'];
const groups = {{}};
kinds.forEach((kind, i) => groups[kind] = el('g', {{ class: 'kind', 'data-kind': kind, stroke: palette[i % palette.length] }}));
for (const m of page.timeline.messages) {{
  const y1 = laneY(m.from) + laneHeight / 2 - 8, y2 = laneY(m.to) + laneHeight / 2 - 8;
  const lost = m.deliver_ms === null;
  const end = lost ? m.sent_ms + 5 : m.deliver_ms;
  el('line', {{ class: 'msg' + (lost ? ' lost' : ''), x1: x(m.sent_ms), y1, x2: x(end), y2: lost ? (y1 + y2) / 2 : y2 }}, groups[m.kind]);
}}
// Client operations: one row per client.
clients.forEach((client, row) => el('text', {{ x: 4, y: opsTop + row * 14 + 10 }}, svg, 'c' + client));
for (const op of page.ops) {{
  const row = clients.indexOf(op.client);
  const end = op.complete_ms === null ? page.end_ms : op.complete_ms;
  const classes = 'op' + (op.complete_ms === null ? ' unknown' : '') + (op.violation ? ' violation' : '');
  const r = el('rect', {{ class: classes, x: x(op.invoke_ms), y: opsTop + row * 14, width: Math.max(1, x(end) - x(op.invoke_ms)), height: 10 }});
  r.appendChild(Object.assign(document.createElementNS(NS, 'title'), {{ textContent: `c${{op.client}} ${{op.text}} -> ${{op.outcome}} [${{op.invoke_ms}}..${{op.complete_ms ?? 'never'}}]` }}));
}}
// Time axis.
for (let t = 0; t <= page.end_ms; t += Math.max(100, Math.ceil(page.end_ms / 20 / 100) * 100)) {{
  el('line', {{ x1: x(t), y1: 20, x2: x(t), y2: height - 20, stroke: '#eee' }});
  el('text', {{ x: x(t) + 2, y: 14 }}, svg, t + ' ms');
}}
// Filters.
const controls = document.getElementById('controls');
for (const kind of kinds) {{
  const label = document.createElement('label');
  const box = Object.assign(document.createElement('input'), {{ type: 'checkbox', checked: true }});
  box.dataset.kind = kind;
  box.addEventListener('change', () => groups[kind].style.display = box.checked ? '' : 'none');
  label.append(box, ' ' + kind + ' (' + page.timeline.messages.filter(m => m.kind === kind).length + ')');
  controls.appendChild(label);
}}
const legend = document.createElement('div');
legend.id = 'legend';
legend.innerHTML = Object.entries(roleColour).map(([role, colour]) =>
  `<span style="background:${{colour}};padding:0 6px;margin-right:6px">${{role}}</span>`).join('') +
  '<span class="fault-key" style="background:rgba(244,180,0,0.3);padding:0 6px;margin-right:6px">fault</span>' +
  '<span style="background:#e0283a;color:white;padding:0 6px">operation in the violation</span>';
controls.after(legend);
const violationBox = document.getElementById('violation');
if (page.violation) {{
  const [first, ...rest] = page.violation.split('\n');
  violationBox.querySelector('summary').textContent = 'linearizability violation on ' + first;
  violationBox.querySelector('pre').textContent = rest.join('\n');
}} else violationBox.style.display = 'none';
document.body.dataset.drawn = 'true';
</script>
</body></html>
"#
    )
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}
