// clearhouse dashboard: one page, hash routes, data from the node's public API.
// No framework and no build step: the node serves these files as they are.
"use strict";

const API = {
  overview: "/v1/views/overview",
  series: "/v1/series",
  book: (id) => `/v1/book/${encodeURIComponent(id)}`,
  rfqs: "/v1/rfqs",
  trades: "/v1/trades",
  batches: "/v1/batches",
  account: (a) => `/v1/views/account/${encodeURIComponent(a)}`,
  oracle: "/v1/views/oracle",
  disputes: "/v1/views/disputes",
  stake: "/v1/views/stake",
  trust: "/v1/views/trust",
  governance: "/v1/views/governance",
  reputation: "/v1/views/reputation",
};
const REFRESH_MS = 5000;
const DECIMALS = 6; // quote token decimals: prices, premiums and strikes arrive in base units

// Series names by id, filled by the markets page and the trades page.
const seriesNames = {};

const $main = document.getElementById("main");
let timer = null;
let pending = null;

// --- helpers -------------------------------------------------------------------------------

function esc(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

async function getJSON(path) {
  const response = await fetch(path, { headers: { Accept: "application/json" } });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const why = body.code ? `${body.code}${body.field ? ` (${body.field})` : ""}: ${body.message || ""}` : response.statusText;
    throw new Error(`${path}: ${response.status} ${why}`);
  }
  return body;
}

// A base-unit integer string as whole units, exactly (BigInt: no float rounding).
function units(value) {
  if (value === null || value === undefined || value === "") return "";
  let v = BigInt(value);
  const neg = v < 0n;
  if (neg) v = -v;
  const base = 10n ** BigInt(DECIMALS);
  const frac = (v % base).toString().padStart(DECIMALS, "0").replace(/0+$/, "");
  return `${neg ? "-" : ""}${(v / base).toLocaleString("en-US")}${frac ? "." + frac : ""}`;
}

async function loadSeries() {
  const series = await getJSON(API.series);
  for (const s of series) seriesNames[s.seriesId] = s.name;
  return series;
}

function seriesName(id) {
  return seriesNames[id] || short(id);
}

function short(hex, n = 6) {
  const s = String(hex ?? "");
  return s.length > 2 * n + 2 ? `${s.slice(0, n + 2)}…${s.slice(-n)}` : s;
}

function time(seconds) {
  if (seconds === null || seconds === undefined || seconds === "") return "";
  return new Date(Number(seconds) * 1000).toISOString().replace("T", " ").slice(0, 19);
}

function duration(seconds) {
  const s = Number(seconds);
  if (!Number.isFinite(s)) return "";
  if (s >= 86400) return `${(s / 86400).toFixed(1)} d`;
  if (s >= 3600) return `${(s / 3600).toFixed(1)} h`;
  if (s >= 60) return `${(s / 60).toFixed(0)} min`;
  return `${s} s`;
}

function tag(text) {
  return `<span class="tag ${esc(String(text).toLowerCase())}">${esc(text)}</span>`;
}

function cards(items) {
  return `<div class="cards">${items.map(([label, value, id]) =>
    `<div class="card"><div class="label">${esc(label)}</div><div class="value"${id ? ` data-key="${esc(id)}"` : ""}>${esc(value)}</div></div>`).join("")}</div>`;
}

// columns: [header, (row) => html, "num"?]
function table(rows, columns, empty = "Nothing yet.") {
  if (!rows || rows.length === 0) return `<div class="empty">${esc(empty)}</div>`;
  const head = columns.map(([h, , cls]) => `<th class="${cls || ""}">${esc(h)}</th>`).join("");
  const body = rows.map((r) => `<tr>${columns.map(([, f, cls]) => `<td class="${cls || ""}">${f(r)}</td>`).join("")}</tr>`).join("");
  return `<table><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
}

function lineChart(points, { invalid = () => false } = {}) {
  if (points.length === 0) return `<div class="empty">No rounds yet.</div>`;
  const W = 720, H = 220, P = 28, L = 64;
  const xs = points.map((p) => p[0]), ys = points.map((p) => p[1]);
  const x0 = Math.min(...xs), x1 = Math.max(...xs) || x0 + 1;
  let y0 = Math.min(...ys), y1 = Math.max(...ys);
  if (y0 === y1) { y0 -= 1; y1 += 1; }
  const sx = (x) => L + ((x - x0) / (x1 - x0 || 1)) * (W - L - P);
  const sy = (y) => H - P - ((y - y0) / (y1 - y0)) * (H - 2 * P);
  const path = points.map((p, i) => `${i ? "L" : "M"}${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join("");
  const grid = [y0, (y0 + y1) / 2, y1].map((y) =>
    `<line class="grid" x1="${L}" x2="${W - P}" y1="${sy(y)}" y2="${sy(y)}"/><text x="${L - 6}" y="${sy(y) + 4}" text-anchor="end">${y.toFixed(2)}</text>`).join("");
  const dots = points.map((p, i) => `<circle class="dot${invalid(i) ? " invalid" : ""}" cx="${sx(p[0])}" cy="${sy(p[1])}" r="2.5"/>`).join("");
  return `<svg class="chart" viewBox="0 0 ${W} ${H}" role="img" aria-label="price chart">${grid}<path class="line" d="${path}"/>${dots}` +
    `<text x="${L}" y="${H - 6}">${esc(time(x0))}</text><text x="${W - P}" y="${H - 6}" text-anchor="end">${esc(time(x1))}</text></svg>`;
}

// --- pages ---------------------------------------------------------------------------------

const pages = {
  async overview() {
    const [v, batches, trades] = await Promise.all([getJSON(API.overview), getJSON(API.batches), getJSON(API.trades), loadSeries()]);
    return `<h1>Overview</h1>${cards(v.cards.map((c) => [c.label, c.value, c.key]))}
      <h2>Latest batches</h2>${batchTable(batches.batches.slice(-10).reverse())}
      <h2>Latest trades</h2>${tradeTable(trades.trades.slice(-10).reverse())}`;
  },

  async markets(params) {
    const series = await loadSeries();
    const selected = params.get("series") || (series[0] && series[0].seriesId);
    let book = "";
    if (selected) {
      const b = await getJSON(API.book(selected));
      const side = (levels, cls) => table(levels, [
        ["price (USDC)", (l) => `<span class="${cls}">${esc(units(l[0]))}</span>`, "num"],
        ["quantity", (l) => esc(l[1]), "num"],
      ], "No orders.");
      book = `<h2>Book ${esc(seriesName(selected))}</h2><div class="split"><div><h2>Bids</h2>${side(b.bids, "bid")}</div><div><h2>Asks</h2>${side(b.asks, "ask")}</div></div>`;
    }
    return `<h1>Markets</h1>${book}<h2>Series</h2>${table(series, [
      ["series", (s) => `<a href="#/markets?series=${encodeURIComponent(s.seriesId)}">${esc(s.name)}</a>`],
      ["expiry", (s) => esc(time(s.expiry))],
      ["strike (USDC)", (s) => esc(units(s.strike)), "num"],
      ["cap (USDC)", (s) => esc(units(s.cap)), "num"],
      ["tick (USDC)", (s) => esc(units(s.premiumTick)), "num"],
    ], "No series listed.")}`;
  },

  async rfqs() {
    const [v] = await Promise.all([getJSON(API.rfqs), loadSeries()]);
    return `<h1>RFQs</h1>${table(v.rfqs.slice().reverse(), [
      ["rfq", (r) => `<span class="mono">${esc(short(r.rfqId))}</span>`],
      ["taker", (r) => `<span class="mono">${esc(short(r.rfq.taker))}</span>`],
      ["legs", (r) => esc((r.rfq.legs || []).map((l) => `${l.isBuy ? "buy" : "sell"} ${l.ratio}× ${seriesName(l.seriesId)}`).join(", "))],
      ["size", (r) => esc(r.rfq.size), "num"],
      ["makers asked", (r) => esc((r.makers || []).length), "num"],
      ["expires", (r) => esc(time(r.rfq.expiry))],
    ], "No RFQs.")}`;
  },

  async trades() {
    const [v] = await Promise.all([getJSON(API.trades), loadSeries()]);
    return `<h1>Trades</h1>${tradeTable(v.trades.slice().reverse())}`;
  },

  async batches() {
    const v = await getJSON(API.batches);
    return `<h1>Batches</h1>${batchTable(v.batches.slice().reverse())}`;
  },

  async oracle() {
    const v = await getJSON(API.oracle);
    if (!v.feeds || v.feeds.length === 0) return `<h1>Oracle feeds</h1><div class="empty">No feeds configured.</div>`;
    return `<h1>Oracle feeds</h1>` + v.feeds.map((f) => `
      <h2>${esc(f.pair)} <span class="tag">n = ${esc(f.committee_size)}, f = ${esc(f.f)}</span></h2>
      ${cards([["latest price", f.latest_price ?? "–"], ["rounds", f.rounds.length], ["disputed", f.rounds.filter((r) => r.disputed).length], ["invalid", f.rounds.filter((r) => r.invalid).length]])}
      ${lineChart(f.rounds.map((r) => [Number(r.timestamp), Number(r.price)]), { invalid: (i) => f.rounds[i].invalid })}
      ${table(f.rounds.slice(-10).reverse(), [
        ["round", (r) => esc(r.round), "num"],
        ["price", (r) => esc(r.price), "num"],
        ["time", (r) => esc(time(r.timestamp))],
        ["kind", (r) => esc(r.optimistic ? "optimistic" : "verified")],
        ["status", (r) => tag(r.invalid ? "invalid" : r.disputed ? "disputed" : "ok")],
      ])}`).join("");
  },

  async disputes() {
    const v = await getJSON(API.disputes);
    return `<h1>Disputes and arbitration</h1>${table(v.assertions, [
      ["id", (a) => `<span class="mono">${esc(short(a.id))}</span>`],
      ["claim", (a) => esc(a.claim)],
      ["asserter", (a) => `<span class="mono">${esc(short(a.asserter))}</span>`],
      ["disputer", (a) => `<span class="mono">${esc(short(a.disputer || ""))}</span>`],
      ["bond", (a) => esc(a.bond), "num"],
      ["phase", (a) => tag(a.phase)],
      ["outcome", (a) => (a.outcome === null || a.outcome === undefined ? "" : tag(a.outcome ? "true" : "false"))],
    ], "No assertions.")}`;
  },

  async accounts(params) {
    const who = params.get("address") || "";
    let body = "";
    if (who) {
      const [a] = await Promise.all([getJSON(API.account(who)), loadSeries()]);
      body = !a.market ? `<div class="empty">This node runs no market.</div>` :
        `${cards([["balance (USDC)", a.balance], ["requirement (USDC)", a.requirement], ["free collateral (USDC)", a.free_collateral], ["positions", a.positions.length]])}
        <h2>Positions</h2>${table(a.positions, [
          ["series", (p) => esc(seriesName(p.series_id))],
          ["quantity", (p) => esc(p.quantity), "num"],
        ], "No open positions.")}${greeksSection(a)}`;
    }
    return `<h1>Accounts</h1>
      <form class="lookup" onsubmit="location.hash = '#/accounts?address=' + encodeURIComponent(this.address.value.trim()); return false;">
        <input name="address" placeholder="0x… account address" value="${esc(who)}" aria-label="account address">
        <button type="submit">Look up</button></form>${body}`;
  },

  async stake() {
    const v = await getJSON(API.stake);
    return `<h1>Stake</h1><p class="muted">Scores per staker are on the <a href="#/reputation">Reputation</a> page.</p>` + v.roles.map((r) => `
      <h2>${esc(r.role)}</h2>
      ${cards([["stakers", r.stakers], ["total stake", r.total_stake], ["Nakamoto coefficient", r.nakamoto ?? "–"], ["HHI", r.hhi ?? "–"]])}
      ${table(r.members, [
        ["address", (m) => `<span class="mono">${esc(m.address)}</span>`],
        ["stake", (m) => esc(m.stake), "num"],
        ["share", (m) => esc(m.share), "num"],
      ], "No stakers.")}`).join("");
  },

  async reputation() {
    const v = await getJSON(API.reputation);
    const pct = (ppm) => (ppm === null || ppm === undefined ? "–" : `${(Number(ppm) / 10000).toFixed(2)} %`);
    const count = (fraction) => { const [p, q] = String(fraction).split("/"); return (Number(p) / Number(q || 1)).toFixed(2); };
    const rows = (role) => Object.entries(v.scores[role] || {}).map(([address, s]) => ({ address, ...s }));
    const stake = (role, a) => (v.stake && v.stake[role] && v.stake[role][a]) || "–";
    const who = ["address", (r) => `<span class="mono">${esc(r.address)}</span>`];
    const makers = rows("makers");
    return `<h1>Reputation</h1>
      ${cards([["makers", makers.length], ["paused makers", makers.filter((m) => m.paused).length], ["oracle members", rows("oracles").length], ["as of block", v.block], ["at", time(v.now)], ["published events", v.events]])}
      <p class="note">Scores are recomputed from the node's published event log (<span class="mono">/v1/events</span>) and the chain; <span class="mono">clearhouse reputation recompute</span> checks them.</p>
      <h2>Makers</h2>${table(makers, [who,
        ["score", (m) => esc(pct(m.score_ppm)), "num"],
        ["fade rate", (m) => esc(pct(m.fade_rate_ppm)), "num"],
        ["quote-to-fill", (m) => esc(pct(m.fill_ratio_ppm)), "num"],
        ["response rate", (m) => esc(pct(m.response_rate_ppm)), "num"],
        ["latency", (m) => esc(`${m.latency_ms} ms`), "num"],
        ["routed (weighted)", (m) => esc(count(m.routed)), "num"],
        ["RFQ share", (m) => esc(pct(v.routing_share_ppm[m.address])), "num"],
        ["status", (m) => tag(m.paused ? "paused" : "routed")],
      ], "No maker events yet.")}
      <h2>Oracle members</h2>${table(rows("oracles"), [who,
        ["score", (o) => esc(pct(o.score_ppm)), "num"],
        ["rounds (weighted)", (o) => esc(count(o.rounds)), "num"],
        ["miss rate", (o) => esc(pct(o.miss_rate_ppm)), "num"],
        ["deviation from median", (o) => esc(pct(o.deviation_ppm)), "num"],
        ["stake", (o) => esc(stake("oracle", o.address)), "num"],
      ], "No oracle rounds yet.")}
      <h2>Watchers</h2>${table(rows("watchers"), [who,
        ["score", (w) => esc(pct(w.score_ppm)), "num"],
        ["upheld challenges", (w) => esc(count(w.valid)), "num"],
        ["rejected challenges", (w) => esc(count(w.rejected)), "num"],
      ], "No challenges yet.")}
      <h2>Coordinators</h2>${table(rows("coordinators"), [who,
        ["score", (c) => esc(pct(c.score_ppm)), "num"],
        ["batches finalised", (c) => esc(count(c.finalised)), "num"],
        ["batches reverted", (c) => esc(count(c.reverted)), "num"],
        ["uptime", (c) => esc(pct(c.uptime_ppm)), "num"],
        ["stake", (c) => esc(stake("coordinator", c.address)), "num"],
      ], "No batches yet.")}`;
  },

  async governance() {
    const v = await getJSON(API.governance);
    const power = (p, x) => (p.tally && p.tally.strategy === "quadratic" ? esc(x) : esc(units(x)));
    const timelock = (p) => {
      const o = p.onchain;
      if (!o || o.state === "unqueued") return "";
      if (o.state !== "queued") return tag(o.state);
      return o.seconds_left > 0 ? `${tag("queued")} executable in <strong>${esc(duration(o.seconds_left))}</strong> <span class="muted">(${esc(time(o.eta))})</span>`
        : `${tag("queued")} <strong>executable now</strong>`;
    };
    return `<h1>Governance</h1>
      ${cards([["timelock", v.timelock_seconds === null ? "–" : duration(v.timelock_seconds)], ["exit time it exceeds", v.exit_time_seconds === null ? "–" : duration(v.exit_time_seconds)], ["parameter version", v.version ?? "–"], ["last batch", v.last_batch ?? "–"]])}
      <h2>Proposals</h2>${table(v.proposals, [
        ["id", (p) => esc(p.id), "num"],
        ["title", (p) => esc(p.title ?? "(on-chain only)")],
        ["actions", (p) => esc((p.actions || []).map((a) => `${a.target} → ${a.value}`).join(", "))],
        ["status", (p) => (p.status ? tag(p.status) : "")],
        ["for", (p) => (p.tally ? power(p, p.tally.for) : ""), "num"],
        ["against", (p) => (p.tally ? power(p, p.tally.against) : ""), "num"],
        ["abstain", (p) => (p.tally ? power(p, p.tally.abstain) : ""), "num"],
        ["votes", (p) => esc(p.votes ?? ""), "num"],
        ["quorum", (p) => (p.tally ? tag(p.tally.quorumReached ? "ok" : "pending") : "")],
        ["tally digest", (p) => `<span class="mono">${esc(short(p.tally ? p.tally.digest : ""))}</span>`],
        ["timelock", timelock],
      ], "No proposals yet.")}
      <h2>Executed parameter changes</h2>${table(v.changes.slice().reverse(), [
        ["parameter", (c) => `<span class="mono">${esc(c.parameter)}</span>`],
        ["new value", (c) => esc(c.value), "num"],
        ["version", (c) => esc(c.version), "num"],
        ["applies from batch", (c) => `<strong>${esc(c.from_batch)}</strong>`, "num"],
        ["proposal", (c) => esc(c.proposal ?? ""), "num"],
      ], "No parameter changed yet.")}
      <h2>Parameters now</h2>${table(v.parameters, [
        ["parameter", (c) => `<span class="mono">${esc(c.parameter)}</span>`],
        ["value", (c) => esc(c.value), "num"],
        ["bounds", (c) => esc(`${c.minimum} … ${c.maximum}`)],
      ], "No parameter store deployed.")}`;
  },

  async trust() {
    const v = await getJSON(API.trust);
    return `<h1>Who must be honest for what</h1>
      ${cards([["time for a user to exit", duration(v.exit_time_seconds)], ["challenge window", duration(v.challenge_window_seconds)], ["bonded watchers", v.watchers ?? "–"]])}
      ${table(v.actors, [
        ["actor", (a) => `<strong>${esc(a.actor)}</strong>`],
        ["does", (a) => esc(a.does)],
        ["bonded", (a) => esc(a.bonded)],
        ["trusted for", (a) => esc(a.trusted_for)],
        ["live numbers", (a) => Object.entries(a.numbers || {}).map(([k, val]) => `${esc(k)}: <strong>${esc(val)}</strong>`).join("<br>")],
      ])}
      <h2>Economic security <span class="muted">cost of corruption (stake slashed) against profit from corruption (what a corrupt quorum moves in one window)${v.open_interest_known ? "" : "; no market on this node: open interest unknown"}</span></h2>
      ${table(v.security, [
        ["role", (r) => `<strong>${esc(r.role)}</strong>`],
        ["stake", (r) => esc(r.stake), "num"],
        ["stakers", (r) => esc(r.stakers), "num"],
        ["Nakamoto", (r) => esc(r.nakamoto ?? "–"), "num"],
        ["HHI", (r) => esc(r.hhi), "num"],
        ["cost of corruption", (r) => esc(r.cost_of_corruption), "num"],
        ["profit from corruption", (r) => esc(r.profit_from_corruption), "num"],
        ["ratio", (r) => esc(r.ratio === null ? "∞" : r.ratio + "×"), "num"],
        ["", (r) => `<span class="tag ${r.secure ? "ok" : "bad"}">${r.secure ? "cost ≥ 2× profit" : "cost < 2× profit"}</span>`],
        ["bribery threshold", (r) => esc(r.bribery_threshold ?? "–"), "num"],
        ["time to exit", (r) => esc(r.time_to_exit_seconds == null ? "–" : duration(r.time_to_exit_seconds)), "num"],
      ], "No bonded role deployed.")}`;
  },
};

function greeksSection(a) {
  if (!a.greeks) return "";
  const g = a.greeks, fixed = (x, d) => Number(x).toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d });
  return `<h2>Greeks <span class="muted">at spot ${esc(a.spot)} USDC, each series at its book's implied vol</span></h2>
    ${cards([["value (USDC)", fixed(g.value, 2)], ["delta", fixed(g.delta, 4)], ["gamma", fixed(g.gamma, 6)],
             ["vega (per vol point)", fixed(g.vega / 100, 2)], ["theta (per day)", fixed(g.theta, 2)], ["rho", fixed(g.rho, 2)]])}
    ${table(a.marks, [
      ["series", (m) => esc(m.series)],
      ["vol", (m) => esc((100 * m.vol).toFixed(1) + " %"), "num"],
      ["from", (m) => tag(m.source)],
    ], "")}`;
}

function tradeTable(rows) {
  return table(rows, [
    ["time", (t) => esc(time(t.time))],
    ["series", (t) => esc(seriesName(t.seriesId))],
    ["quantity", (t) => esc(t.quantity), "num"],
    ["price (USDC)", (t) => esc(units(t.price)), "num"],
    ["premium (USDC)", (t) => esc(units(t.premium)), "num"],
    ["maker", (t) => `<span class="mono">${esc(short(t.maker))}</span>`],
    ["taker", (t) => `<span class="mono">${esc(short(t.taker))}</span>`],
    ["leg", (t) => esc(t.legs > 1 ? `${t.leg + 1} of ${t.legs}` : "")],
  ], "No trades yet.");
}

function batchTable(rows) {
  return table(rows, [
    ["batch", (b) => esc(b.number), "num"],
    ["status", (b) => tag(b.status)],
    ["state root", (b) => `<span class="mono">${esc(short(b.stateRoot))}</span>`],
    ["transaction", (b) => `<span class="mono">${esc(short(b.txHash || ""))}</span>`],
  ], "No batches yet.");
}

// --- router and live updates ---------------------------------------------------------------

async function render() {
  const [path, query] = (location.hash.slice(2) || "overview").split("?");
  const page = pages[path] ? path : "overview";
  document.querySelectorAll("#nav a").forEach((a) => a.classList.toggle("active", a.getAttribute("href") === `#/${page}`));
  try {
    $main.innerHTML = await pages[page](new URLSearchParams(query || ""));
    $main.dataset.page = page;
    $main.dataset.loaded = String(Date.now());
  } catch (err) {
    $main.innerHTML = `<div class="error">${esc(err.message)}</div>`;
    $main.dataset.page = "error";
  }
}

function schedule() {
  clearInterval(timer);
  timer = setInterval(() => { if (!document.hidden && !document.activeElement?.matches("input")) render(); }, REFRESH_MS);
}

function connect() {
  const badge = document.getElementById("live");
  let ws;
  try {
    ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/v1/ws`);
  } catch {
    return;
  }
  ws.onopen = () => {
    for (const channel of ["trades", "rfqs", "batches", "oracle", "disputes", "governance"]) {
      ws.send(JSON.stringify({ op: "subscribe", channel }));
    }
  };
  ws.onmessage = (message) => {
    const frame = JSON.parse(message.data);
    if (frame.type === "subscribed") { badge.textContent = "live"; badge.classList.add("on"); return; }
    if (frame.type !== "event") return;
    // Coalesce bursts of events into one redraw.
    if (pending) return;
    pending = setTimeout(() => { pending = null; if (!document.activeElement?.matches("input")) render(); }, 500);
  };
  ws.onclose = () => { badge.textContent = "offline"; badge.classList.remove("on"); setTimeout(connect, 3000); };
}

window.addEventListener("hashchange", render);
render();
schedule();
connect();
