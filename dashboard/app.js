// SPDX-License-Identifier: MIT
// The dashboard's DOM glue: an MQTT client over websockets feeds model.js,
// and the page is redrawn from the model as messages arrive (push only; the
// one timer refreshes the age texts). Every text from the broker goes in
// through textContent: payloads and discovery are untrusted.
import {
	createModel, DEFAULT_PREFIX, ACTUATORS, formatValue, formatAge, ageText, commandPayload, togglePayload,
	sparkPath,
} from './model.js';

const params = new URLSearchParams(location.search);
// mosquitto serves this page on its websockets listener, so the broker is
// where the page came from unless the URL says otherwise.
const defaultBroker = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host || 'localhost:9001'}`;
const prefix = params.get('prefix') || DEFAULT_PREFIX;
const SPARK_W = 120;
const SPARK_H = 24;
const SVG = 'http://www.w3.org/2000/svg';

const model = createModel({ prefix });
let client = null;
let connected = false;
const subscribed = new Set();
const gatewayCards = new Map(); // gateway id -> { card, parts }
const rows = new Map(); // unique_id -> { row, parts }

const $ = (id) => document.getElementById(id);

function el(tag, className, text) {
	const n = document.createElement(tag);
	if (className)
		n.className = className;
	if (text !== undefined)
		n.textContent = text;
	return n;
}

function setConnState(state, detail = '') {
	const s = $('conn');
	s.dataset.state = state;
	s.textContent = detail ? `${state}: ${detail}` : state;
	// The form is in the way once connected; open it whenever it is needed.
	$('connect-box').open = state !== 'connected';
}

function connect(url, username, password) {
	if (client)
		client.end(true);
	connected = false;
	subscribed.clear();
	if (typeof mqtt === 'undefined') {
		setConnState('error', 'vendor/mqtt.min.js missing (make dashboard)');
		return;
	}
	setConnState('connecting', url);
	client = mqtt.connect(url, {
		username: username || undefined,
		password: password || undefined,
		clientId: `sgdash-${Math.random().toString(16).slice(2, 10)}`,
		clean: true,
		// Clean sessions: the page resubscribes itself on every connect,
		// which also brings back the retained discovery and states.
		resubscribe: false,
		reconnectPeriod: 3000,
		connectTimeout: 10_000,
	});
	const me = client;
	client.on('connect', () => {
		if (me !== client)
			return;
		connected = true;
		subscribed.clear();
		setConnState('connected', url);
		syncSubscriptions();
		renderAll();
	});
	client.on('message', (topic, payload, packet) => {
		if (me !== client)
			return;
		const text = new TextDecoder().decode(payload);
		const ch = model.handle(topic, text, packet.retain, Date.now());
		if (ch.structure) {
			syncSubscriptions();
			renderAll();
			return;
		}
		for (const id of ch.gateways)
			renderGateway(id);
		for (const id of ch.entities)
			renderEntity(id);
	});
	const down = (state) => (err) => {
		if (me !== client)
			return;
		if (connected) {
			connected = false;
			renderAll();
		}
		// 'close' follows 'error': keep the reason on screen.
		if (state === 'error' || $('conn').dataset.state !== 'error')
			setConnState(state, err?.message ?? '');
	};
	client.on('close', down('disconnected'));
	client.on('offline', down('offline'));
	client.on('error', down('error'));
	client.on('reconnect', () => me === client && setConnState('connecting', url));
}

// Subscribes to what the model needs now and drops what it no longer does
// (an entity withdrawn).
function syncSubscriptions() {
	if (!client || !connected)
		return;
	const want = new Set(model.subscriptions());
	const add = [...want].filter((t) => !subscribed.has(t));
	const drop = [...subscribed].filter((t) => !want.has(t));
	for (const t of add)
		subscribed.add(t);
	for (const t of drop)
		subscribed.delete(t);
	if (add.length)
		client.subscribe(add, { qos: 0 }, (err) => err && setConnState('error', `subscribe: ${err.message}`));
	if (drop.length)
		client.unsubscribe(drop);
}

function publish(entity, payload, row) {
	if (!client || !connected)
		return;
	client.publish(entity.config.command_topic, payload, { qos: 1, retain: false }, (err) => {
		if (err)
			setRowError(row, `not sent: ${err.message}`);
	});
}

function setRowError(r, text) {
	r.parts.error.textContent = text;
}

function gatewayCard(gw) {
	let g = gatewayCards.get(gw.id);
	if (g)
		return g;
	const card = el('section', 'gateway');
	card.dataset.gateway = gw.id;
	const head = el('header', 'gw-head');
	const parts = {
		name: el('h2', 'gw-name'),
		status: el('span', 'gw-status'),
		since: el('span', 'gw-since'),
		version: el('span', 'gw-version'),
		stats: el('dl', 'gw-stats'),
		own: el('div', 'gw-own'),
		devices: el('div', 'gw-devices'),
		diag: el('details', 'diagnostics'),
		diagList: el('div', 'diag-list'),
	};
	parts.diag.append(el('summary', '', 'diagnostics'), parts.diagList);
	head.append(parts.name, parts.status, parts.since, parts.version);
	card.append(head, parts.stats, parts.own, parts.devices, parts.diag);
	g = { card, parts };
	gatewayCards.set(gw.id, g);
	return g;
}

function deviceBox(device, cache) {
	let box = cache.get(device.id);
	if (!box) {
		box = el('div', 'device');
		box.dataset.device = device.id;
		box.append(el('h3', 'dev-name'), el('span', 'dev-model'), el('div', 'dev-entities'));
	}
	box.querySelector('.dev-name').textContent = device.name;
	box.querySelector('.dev-model').textContent = device.model ?? '';
	return box;
}

function entityRow(e) {
	let r = rows.get(e.id);
	if (r && r.kind === e.component)
		return r;
	const row = el('div', 'entity');
	row.dataset.entity = e.id;
	const parts = { name: el('span', 'name'), value: el('span', 'value'), unit: el('span', 'unit'),
		age: el('span', 'age') };
	row.append(parts.name, parts.value, parts.unit, parts.age);
	if (e.component === 'sensor') {
		parts.spark = document.createElementNS(SVG, 'svg');
		parts.spark.setAttribute('class', 'spark');
		parts.spark.setAttribute('viewBox', `0 0 ${SPARK_W} ${SPARK_H}`);
		parts.spark.setAttribute('preserveAspectRatio', 'none');
		parts.path = document.createElementNS(SVG, 'path');
		parts.spark.append(parts.path);
		row.append(parts.spark);
	}
	r = { row, parts, kind: e.component, controls: [] };
	if (ACTUATORS.has(e.component)) {
		row.classList.add('actuator');
		row.dataset.kind = e.component;
		const ctl = el('span', 'control');
		if (e.component === 'switch') {
			const b = el('button', 'toggle', 'toggle');
			b.type = 'button';
			b.addEventListener('click', () => {
				const cur = model.entities.get(e.id);
				if (cur)
					publish(cur, togglePayload(cur), r);
			});
			ctl.append(b);
			r.controls.push(b);
		} else {
			const input = e.component === 'number' ? el('input', 'num') : el('select', 'sel');
			if (e.component === 'number')
				input.type = 'number';
			input.setAttribute('aria-label', `${e.name} value`);
			const set = el('button', 'set', 'set');
			set.type = 'button';
			set.addEventListener('click', () => {
				const cur = model.entities.get(e.id);
				if (!cur)
					return;
				const res = commandPayload(cur.config, input.value);
				if (res.ok) {
					setRowError(r, '');
					publish(cur, res.payload, r);
				} else {
					setRowError(r, res.error); // refused here: nothing sent
				}
			});
			ctl.append(input, set);
			r.controls.push(input, set);
			parts.input = input;
		}
		parts.error = el('span', 'error');
		row.append(ctl, parts.error);
	}
	rows.set(e.id, r);
	return r;
}

// Rebuilds the layout from model.tree(), reusing the elements already there
// (so focus and typed input survive), then fills in every text.
function renderAll() {
	const main = $('gateways');
	const seenGw = new Set();
	const seenRows = new Set();
	const order = [];
	for (const node of model.tree()) {
		const g = gatewayCard(node.gateway);
		seenGw.add(node.gateway.id);
		order.push(g.card);
		const own = [];
		const diag = [];
		for (const e of node.own) {
			seenRows.add(e.id);
			(e.config.entity_category ? diag : own).push(entityRow(e).row);
		}
		g.parts.own.replaceChildren(...own);
		g.parts.diagList.replaceChildren(...diag);
		g.parts.diag.hidden = diag.length === 0;
		const cache = new Map([...g.parts.devices.children].map((d) => [d.dataset.device, d]));
		g.parts.devices.replaceChildren(...node.devices.map(({ device, entities }) => {
			const box = deviceBox(device, cache);
			box.querySelector('.dev-entities').replaceChildren(...entities.map((e) => {
				seenRows.add(e.id);
				return entityRow(e).row;
			}));
			return box;
		}));
		renderGateway(node.gateway.id);
	}
	main.replaceChildren(...order);
	for (const id of gatewayCards.keys())
		if (!seenGw.has(id))
			gatewayCards.delete(id);
	for (const id of rows.keys())
		if (!seenRows.has(id))
			rows.delete(id);
	for (const id of rows.keys())
		renderEntity(id);
	$('empty').hidden = order.length > 0;
}

function sinceText(gw, now) {
	if (gw.since === null)
		return '';
	if (gw.sinceBeforeOpen)
		return 'since before this page opened';
	return `since ${new Date(gw.since).toLocaleTimeString()} (${formatAge(now - gw.since)} ago)`;
}

// The stats fields, the ones a glance needs first.
const STATS_FIRST = ['readings_per_s', 'spool_depth', 'dropped', 'in_flight', 'connected', 'uptime_s'];

function renderGateway(id) {
	const gw = model.gateways.get(id);
	const g = gatewayCards.get(id);
	if (!gw || !g)
		return;
	const p = g.parts;
	p.name.textContent = gw.name;
	p.status.textContent = gw.status;
	p.status.dataset.status = gw.status;
	g.card.dataset.status = gw.status;
	p.since.textContent = sinceText(gw, Date.now());
	p.since.dataset.beforeOpen = String(gw.sinceBeforeOpen);
	p.version.textContent = gw.version ? `v${gw.version}` : '';
	const stats = gw.stats ?? {};
	const keys = Object.keys(stats).sort((a, b) => {
		const ia = STATS_FIRST.indexOf(a);
		const ib = STATS_FIRST.indexOf(b);
		return (ia < 0 ? 99 : ia) - (ib < 0 ? 99 : ib) || a.localeCompare(b);
	});
	p.stats.replaceChildren(...keys.flatMap((k) => {
		const v = stats[k];
		const dd = el('dd', '', k === 'uptime_s' ? formatAge(v * 1000) : String(v));
		dd.dataset.stat = k;
		return [el('dt', '', k.replace(/_/g, ' ')), dd];
	}));
	// The gateway's status gates its actuators.
	for (const eid of gw.entities)
		renderControls(eid);
}

function renderControls(id) {
	const r = rows.get(id);
	const e = model.entities.get(id);
	if (!r || !e)
		return;
	const gw = model.gateways.get(e.gatewayId);
	const enabled = connected && gw?.status === 'online';
	for (const c of r.controls)
		c.disabled = !enabled;
}

function renderEntity(id) {
	const r = rows.get(id);
	const e = model.entities.get(id);
	if (!r || !e)
		return;
	const p = r.parts;
	const now = Date.now();
	r.row.dataset.available = String(e.available);
	p.name.textContent = e.name;
	// Actuators show their confirmed state exactly as it came.
	p.value.textContent = ACTUATORS.has(e.component) ? (e.value ?? '') : formatValue(e);
	p.unit.textContent = e.config.unit_of_measurement ?? '';
	p.age.textContent = ageText(e, now);
	if (p.path)
		p.path.setAttribute('d', sparkPath(e.history, now, SPARK_W, SPARK_H));
	if (p.error)
		p.error.textContent = e.error;
	if (p.input && document.activeElement !== p.input) {
		const c = e.config;
		if (e.component === 'number') {
			for (const k of ['min', 'max', 'step'])
				if (c[k] !== undefined)
					p.input.setAttribute(k, String(c[k]));
		} else {
			const opts = Array.isArray(c.options) ? c.options.map(String) : [];
			if ([...p.input.options].map((o) => o.value).join('\n') !== opts.join('\n'))
				p.input.replaceChildren(...opts.map((o) => {
					const opt = el('option', '', o);
					opt.value = o;
					return opt;
				}));
		}
		// The control starts from the confirmed state, unless being edited.
		if (e.value !== null && e.value !== r.shown) {
			p.input.value = e.value;
			r.shown = e.value;
		}
	}
	if (e.component === 'switch')
		r.controls[0].textContent = e.value === (e.config.state_on ?? e.config.payload_on ?? 'ON') ? 'turn off' : 'turn on';
	renderControls(id);
}

function tick() {
	const now = Date.now();
	for (const [id, r] of rows) {
		const e = model.entities.get(id);
		if (e)
			r.parts.age.textContent = ageText(e, now);
	}
	for (const [id, g] of gatewayCards) {
		const gw = model.gateways.get(id);
		if (gw)
			g.parts.since.textContent = sinceText(gw, now);
	}
}

function tickMinute() {
	const now = Date.now();
	model.prune(now);
	for (const [id, r] of rows) {
		const e = model.entities.get(id);
		if (e && r.parts.path)
			r.parts.path.setAttribute('d', sparkPath(e.history, now, SPARK_W, SPARK_H));
	}
}

function start() {
	const form = $('connect-form');
	form.broker.value = params.get('broker') || defaultBroker;
	form.user.value = params.get('user') || '';
	form.addEventListener('submit', (ev) => {
		ev.preventDefault();
		connect(form.broker.value.trim(), form.user.value, form.password.value);
	});
	$('prefix').textContent = prefix;
	setInterval(tick, 1000);
	setInterval(tickMinute, 60_000);
	connect(form.broker.value.trim(), form.user.value, '');
}

window.sgDashboard = {
	model,
	get client() {
		return client;
	},
	get connected() {
		return connected;
	},
};

start();
