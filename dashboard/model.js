// SPDX-License-Identifier: MIT
// The dashboard's model: what the page knows about sensorgate gateways,
// built from MQTT messages alone (Home Assistant discovery, then the state,
// availability, stats and error topics that discovery names).
//
// No DOM and no MQTT client here: app.js feeds messages in as
// (topic, text, retained, time) and renders what comes out, so everything
// below runs as is under Node's test runner.

export const DEFAULT_PREFIX = 'homeassistant';
export const UNIQUE_ID_PREFIX = 'sensorgate_';
export const HISTORY_MS = 60 * 60 * 1000;
// One point per 5 s over the hour: enough for a sparkline, bounded memory
// whatever rate a sensor publishes at.
export const HISTORY_MAX = 720;

export const ACTUATORS = new Set(['switch', 'number', 'select']);
// The components sensorgate announces that are entities; device_automation
// (device triggers) has no entity and no state of its own, so it is skipped.
const COMPONENTS = new Set(['sensor', 'binary_sensor', 'event', ...ACTUATORS]);

// `<prefix>/<component>/<node id>/<object id>/config`; the node id is the
// gateway id. Topics without a node id are legal in Home Assistant but
// sensorgate never publishes them. Null when TOPIC is not one of these.
export function parseConfigTopic(topic, prefix = DEFAULT_PREFIX) {
	if (typeof topic !== 'string')
		return null;
	const head = prefix.split('/');
	const levels = topic.split('/');
	if (levels.length !== head.length + 4)
		return null;
	for (let i = 0; i < head.length; i++)
		if (levels[i] !== head[i])
			return null;
	const [component, nodeId, objectId, last] = levels.slice(head.length);
	if (last !== 'config' || !component || !nodeId || !objectId)
		return null;
	return { component, nodeId, objectId };
}

// Only the object form of JSON counts: "21.4" is valid JSON too but is
// meant as plain text, and so is "ON".
function parseObject(text) {
	if (!/^\s*\{/.test(text))
		return null;
	try {
		const v = JSON.parse(text);
		return v && typeof v === 'object' && !Array.isArray(v) ? v : null;
	} catch {
		return null;
	}
}

// The field path of the first `value_json.a.b` (or value_json['a']) in a
// template; the templates sensorgate writes never need more than that.
function templatePath(template) {
	const m = /value_json((?:\.[A-Za-z_]\w*|\[\s*['"][^'"]*['"]\s*\])+)/.exec(template);
	if (!m)
		return null;
	return [...m[1].matchAll(/\.([A-Za-z_]\w*)|\[\s*['"]([^'"]*)['"]\s*\]/g)].map((p) => p[1] ?? p[2]);
}

// Jinja truthiness, for "{{ 'ON' if value_json.connected else 'OFF' }}".
function truthy(v) {
	return !(v === false || v === null || v === undefined || v === 0 || v === '' ||
		(typeof v === 'object' && Object.keys(v).length === 0));
}

const NUMBER_RE = /^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$/;

function toNumber(v) {
	if (typeof v === 'number')
		return Number.isFinite(v) ? v : null;
	if (typeof v === 'string' && NUMBER_RE.test(v))
		return Number(v);
	return null;
}

// The raw value of PAYLOAD as CONFIG's template means it, and the JSON
// payload's own time stamp if it has one. Lenient by design: a JSON object
// with "value" is read as such even without a template (and a payload that
// is not JSON although the template expects it is taken as plain text),
// because showing something beats Home Assistant's refusal on a dashboard.
function extract(config, payload) {
	const template = typeof config.value_template === 'string' ? config.value_template : '';
	const json = parseObject(payload);
	if (!json)
		return { raw: payload, ts: null };
	const path = templatePath(template) ?? ['value'];
	let v = json;
	for (const k of path)
		v = v !== null && typeof v === 'object' ? v[k] : undefined;
	const cond = /^\{\{\s*'([^']*)'\s+if\s+value_json\S*\s+else\s+'([^']*)'\s*\}\}$/.exec(template.trim());
	if (cond)
		v = truthy(v) ? cond[1] : cond[2];
	else if (v === undefined && !templatePath(template))
		v = payload; // an object without "value": show it as it came
	const ts = typeof json.ts === 'string' ? Date.parse(json.ts) : NaN;
	return { raw: v, ts: Number.isFinite(ts) ? ts : null };
}

// What PAYLOAD on the state topic of an entity configured by CONFIG means:
// { value, number, ts }. value is null for "no state" (empty payload, or a
// binary payload that is neither payload_on nor payload_off); number is the
// numeric value or null; ts is the payload's own time stamp (ms) or null.
// - sensor: a number when it reads as one, else the text;
// - binary_sensor: "ON" or "OFF" after payload_on/payload_off;
// - event: the event name;
// - switch, number, select: the confirmed state exactly as received.
export function decodeValue(config, payload) {
	const component = config.component;
	const { raw, ts } = extract(config, String(payload ?? ''));
	let value = raw === undefined || raw === null ? null : raw;
	if (typeof value === 'object' && value !== null)
		value = JSON.stringify(value);
	if (value === '' || (typeof value === 'string' && value.trim() === ''))
		return { value: null, number: null, ts };
	if (component === 'binary_sensor') {
		const s = String(value);
		const on = String(config.payload_on ?? 'ON');
		const off = String(config.payload_off ?? 'OFF');
		value = s === on ? 'ON' : s === off ? 'OFF' : null;
		return { value, number: null, ts };
	}
	if (component === 'sensor') {
		const n = toNumber(value);
		return { value: n ?? String(value), number: n, ts };
	}
	value = String(value);
	return { value, number: component === 'number' ? toNumber(value) : null, ts };
}

function decimals(x) {
	const s = String(x);
	const e = /e-(\d+)$/.exec(s);
	if (e)
		return Number(e[1]);
	const dot = s.indexOf('.');
	return dot < 0 ? 0 : s.length - dot - 1;
}

// The payload to publish on CONFIG's command_topic for UIVALUE, checked
// before anything goes to the broker: { ok: true, payload } or
// { ok: false, error }.
// - switch: UIVALUE true/false (or "on"/"off", or payload_on/payload_off);
// - number: a number or its text, within min..max and on a step from min
//   (Home Assistant's defaults 1, 100, 1 when absent), sent as plain text;
// - select: one of the options, exactly.
export function commandPayload(config, uiValue) {
	const component = config.component;
	if (!config.command_topic)
		return { ok: false, error: 'not a command entity' };
	if (component === 'switch') {
		const on = String(config.payload_on ?? 'ON');
		const off = String(config.payload_off ?? 'OFF');
		const s = typeof uiValue === 'string' ? uiValue.trim() : uiValue;
		if (s === true || s === on || (typeof s === 'string' && s.toLowerCase() === 'on'))
			return { ok: true, payload: on };
		if (s === false || s === off || (typeof s === 'string' && s.toLowerCase() === 'off'))
			return { ok: true, payload: off };
		return { ok: false, error: `not on or off: ${String(uiValue)}` };
	}
	if (component === 'number') {
		const text = typeof uiValue === 'number' ? String(uiValue) : String(uiValue ?? '').trim();
		if (!NUMBER_RE.test(text))
			return { ok: false, error: `not a number: ${text === '' ? '(empty)' : text}` };
		const v = Number(text);
		const min = Number(config.min ?? 1);
		const max = Number(config.max ?? 100);
		const step = Number(config.step ?? 1);
		if (v < min || v > max)
			return { ok: false, error: `out of range ${min}..${max}: ${text}` };
		if (step > 0) {
			const k = (v - min) / step;
			// Relative slack: 0.1 steps do not divide exactly in binary.
			if (Math.abs(k - Math.round(k)) > 1e-6)
				return { ok: false, error: `not a multiple of ${step} from ${min}: ${text}` };
		}
		// Rounded to what the step can express, so 0.1 + 0.2 goes out as 0.3.
		const places = Math.min(20, Math.max(decimals(step), decimals(min)));
		return { ok: true, payload: String(Number(v.toFixed(places))) };
	}
	if (component === 'select') {
		const options = Array.isArray(config.options) ? config.options.map(String) : [];
		const s = String(uiValue ?? '');
		if (!options.includes(s))
			return { ok: false, error: `not one of ${options.join(', ')}: ${s}` };
		return { ok: true, payload: s };
	}
	return { ok: false, error: `no commands for ${component}` };
}

// Whether a switch is on by its confirmed state (state_on defaults to
// payload_on, as in Home Assistant); null while unknown.
export function switchIsOn(entity) {
	const c = entity.config;
	if (entity.value === null || entity.value === undefined)
		return null;
	const stateOn = String(c.state_on ?? c.payload_on ?? 'ON');
	const stateOff = String(c.state_off ?? c.payload_off ?? 'OFF');
	return entity.value === stateOn ? true : entity.value === stateOff ? false : null;
}

// The payload the toggle of a switch sends: the opposite of its confirmed
// state, payload_on while that is unknown.
export function togglePayload(entity) {
	return commandPayload(entity.config, switchIsOn(entity) !== true).payload;
}

// ENTITY's value as text for the page, without its unit: numbers with
// suggested_display_precision decimals when given; '' while unknown.
export function formatValue(entity) {
	const v = entity?.value;
	if (v === null || v === undefined)
		return '';
	if (typeof v === 'number') {
		const p = entity.config?.suggested_display_precision;
		if (Number.isInteger(p) && p >= 0 && p <= 20) {
			const s = v.toFixed(p);
			return Number(s) === 0 ? s.replace(/^-/, '') : s; // no "-0.0"
		}
		return String(v);
	}
	return String(v);
}

// A duration as a short text: "5 s", "3 min", "2 h", "4 d".
export function formatAge(ms) {
	if (typeof ms !== 'number' || !Number.isFinite(ms))
		return '';
	const s = Math.max(0, Math.floor(ms / 1000));
	if (s < 60)
		return `${s} s`;
	if (s < 3600)
		return `${Math.floor(s / 60)} min`;
	if (s < 86400)
		return `${Math.floor(s / 3600)} h`;
	return `${Math.floor(s / 86400)} d`;
}

// How old ENTITY's value is, as the page can tell: a retained value was on
// the broker before the page saw it, so its age is a lower bound ("≥").
// The payload's own "ts" is not used: the gateway's clock may disagree with
// the browser's.
export function ageText(entity, nowMs) {
	if (entity.at === null || entity.at === undefined)
		return '';
	return `${entity.retained ? '≥ ' : ''}${formatAge(nowMs - entity.at)} ago`;
}

// An SVG path (in a WIDTH x HEIGHT box) through the points of HISTORY of the
// hour before NOWMS: time left to right, value bottom to top. '' when there
// is nothing to draw.
export function sparkPath(history, nowMs, width = 100, height = 20) {
	const pts = history.filter((p) => p.t >= nowMs - HISTORY_MS);
	if (pts.length === 0)
		return '';
	let lo = Infinity;
	let hi = -Infinity;
	for (const p of pts) {
		lo = Math.min(lo, p.v);
		hi = Math.max(hi, p.v);
	}
	const span = hi - lo || 1; // a flat line sits in the middle
	const y = (v) => (hi === lo ? height / 2 : height - 1 - ((v - lo) / span) * (height - 2));
	const x = (t) => ((t - (nowMs - HISTORY_MS)) / HISTORY_MS) * width;
	const r = (n) => Math.round(n * 10) / 10;
	const d = pts.map((p, i) => `${i ? 'L' : 'M'}${r(x(p.t))} ${r(y(p.v))}`);
	if (pts.length === 1) // one point: a short dash, so it shows
		d.push(`L${r(Math.min(width, x(pts[0].t) + 2))} ${r(y(pts[0].v))}`);
	return d.join(' ');
}

// The availability entries of CONFIG, with Home Assistant's defaults.
function availabilityList(config) {
	const list = [];
	const add = (a) => {
		if (a && typeof a.topic === 'string' && a.topic)
			list.push({
				topic: a.topic,
				on: String(a.payload_available ?? config.payload_available ?? 'online'),
				off: String(a.payload_not_available ?? config.payload_not_available ?? 'offline'),
			});
	};
	if (Array.isArray(config.availability))
		config.availability.forEach(add);
	if (typeof config.availability_topic === 'string')
		add({ topic: config.availability_topic });
	return list;
}

function deviceIdOf(config) {
	const ids = config.device?.identifiers;
	const id = Array.isArray(ids) ? ids[0] : ids;
	return typeof id === 'string' && id ? id : null;
}

export function createModel({ prefix = DEFAULT_PREFIX } = {}) {
	const gateways = new Map(); // gateway id -> gateway
	const devices = new Map();  // device identifier -> device (not the gateways' own devices)
	const entities = new Map(); // unique_id -> entity
	const byConfigTopic = new Map(); // config topic -> unique_id, for deletion by empty payload
	// The last message of every topic but discovery's: an entity
	// announced after its topics' retained messages came (a discovery update,
	// a second entity on the stats topic) starts from them.
	const last = new Map(); // topic -> { payload, retained, at, seq }
	let seq = 0;

	const changes = () => ({ structure: false, gateways: new Set(), entities: new Set() });

	function gatewayFor(id) {
		let gw = gateways.get(id);
		if (!gw) {
			gw = {
				id, name: id, deviceId: null, version: null,
				status: 'unknown', since: null, sinceBeforeOpen: false,
				statusTopic: null, statsTopic: null, stats: null, statsAt: null,
				entities: new Set(), // every entity announced under this gateway id
			};
			gateways.set(id, gw);
		}
		return gw;
	}

	// Available iff every listed availability topic says so ("all", and
	// also when availability_mode is absent: sensorgate lists the gateway's
	// status and at most the device's own, and either one saying offline
	// makes the reading stale; Home Assistant's own default, "latest", would
	// let a device's "online" hide a gateway gone offline). "any" and
	// "latest" are honoured when asked for. Never-heard topics count as
	// not available, as in Home Assistant.
	function availableOf(config) {
		const list = availabilityList(config);
		if (list.length === 0)
			return true;
		const ok = list.map((a) => last.get(a.topic)?.payload === a.on);
		const mode = config.availability_mode;
		if (mode === 'any')
			return ok.some(Boolean);
		if (mode === 'latest') {
			let best = -1;
			let res = false;
			list.forEach((a, i) => {
				const m = last.get(a.topic);
				if (m && (m.payload === a.on || m.payload === a.off) && m.seq > best) {
					best = m.seq;
					res = ok[i];
				}
			});
			return res;
		}
		return ok.every(Boolean);
	}

	function setStatus(gw, msg) {
		const s = msg.payload === 'online' ? 'online' : msg.payload === 'offline' ? 'offline' : 'unknown';
		if (s === gw.status)
			return false;
		gw.status = s;
		gw.since = msg.at;
		// A retained status came from the broker's store: it changed before
		// the page saw it, when is unknown.
		gw.sinceBeforeOpen = msg.retained;
		return true;
	}

	function setStats(gw, msg) {
		const json = parseObject(msg.payload);
		if (!json)
			return false;
		const stats = {};
		for (const [k, v] of Object.entries(json))
			if ((typeof v === 'number' && Number.isFinite(v)) || typeof v === 'boolean')
				stats[k] = v;
		gw.stats = stats;
		gw.statsAt = msg.at;
		return true;
	}

	function setValue(e, msg) {
		const d = decodeValue(e.config, msg.payload);
		e.value = d.value;
		e.number = d.number;
		e.ts = d.ts;
		e.at = msg.at;
		e.retained = msg.retained;
		if (e.component === 'sensor' && d.number !== null) {
			e.history.push({ t: msg.at, v: d.number });
			trim(e.history, msg.at);
		}
	}

	function trim(history, nowMs) {
		const excess = history.length - HISTORY_MAX;
		if (excess > 0)
			history.splice(0, excess);
		let old = 0;
		while (old < history.length && history[old].t < nowMs - HISTORY_MS)
			old++;
		if (old)
			history.splice(0, old);
	}

	// Where the gateway's own status and stats come from: its
	// gateway_status entity, else the status topic every availability list
	// of its entities starts with; the stats topic is that of its
	// diagnostic entities templated from JSON.
	function learnGatewayTopics(gw, e) {
		const c = e.config;
		if (!e.deviceId || e.deviceId === gw.deviceId) {
			if (e.objectId === 'gateway_status' || e.id.endsWith('_gateway_status'))
				gw.statusTopic = c.state_topic ?? gw.statusTopic;
			else if (c.entity_category === 'diagnostic' && typeof c.value_template === 'string' &&
				c.value_template.includes('value_json') && c.state_topic)
				gw.statsTopic = c.state_topic;
		}
		if (!gw.statusTopic)
			for (const a of availabilityList(c))
				if (/\/gateway\/[^/]+\/status$/.test(a.topic)) {
					gw.statusTopic = a.topic;
					break;
				}
		const st = gw.statusTopic && last.get(gw.statusTopic);
		if (st && gw.status === 'unknown')
			setStatus(gw, st);
		const ss = gw.statsTopic && last.get(gw.statsTopic);
		if (ss && !gw.stats)
			setStats(gw, ss);
	}

	function removeEntity(uid, ch) {
		const e = entities.get(uid);
		if (!e)
			return;
		entities.delete(uid);
		if (byConfigTopic.get(e.configTopic) === uid)
			byConfigTopic.delete(e.configTopic);
		const dev = e.deviceId && devices.get(e.deviceId);
		if (dev) {
			dev.entities.delete(uid);
			if (dev.entities.size === 0)
				devices.delete(dev.id);
		}
		const gw = gateways.get(e.gatewayId);
		if (gw) {
			gw.entities.delete(uid);
			if (gw.entities.size === 0)
				gateways.delete(gw.id); // all of it withdrawn: the gateway is gone
			ch.gateways.add(gw.id);
		}
		ch.entities.add(uid);
		ch.structure = true;
	}

	function handleConfig(topic, parsed, payload, ch) {
		if (payload.trim() === '') {
			const uid = byConfigTopic.get(topic);
			if (uid)
				removeEntity(uid, ch);
			return;
		}
		if (!COMPONENTS.has(parsed.component))
			return;
		const config = parseObject(payload);
		const uid = config?.unique_id;
		if (typeof uid !== 'string' || !uid.startsWith(UNIQUE_ID_PREFIX))
			return; // not ours (or not an entity): someone else's discovery
		config.component = parsed.component;
		// Another entity on this topic before, or this one moved: start over.
		const before = byConfigTopic.get(topic);
		if (before && before !== uid)
			removeEntity(before, ch);
		const old = entities.get(uid);
		const deviceId = deviceIdOf(config);
		const isGatewayDevice = !config.device?.via_device;
		if (old && (old.configTopic !== topic || old.deviceId !== deviceId || old.component !== parsed.component)) {
			removeEntity(uid, ch);
		}
		const gw = gatewayFor(parsed.nodeId);
		let e = entities.get(uid);
		if (!e) {
			e = {
				id: uid, component: parsed.component, gatewayId: gw.id, objectId: parsed.objectId,
				configTopic: topic, deviceId, config,
				value: null, number: null, ts: null, at: null, retained: false,
				available: true, error: '', errorAt: null, history: [],
			};
			entities.set(uid, e);
			byConfigTopic.set(topic, uid);
			gw.entities.add(uid);
			ch.structure = true;
		} else {
			// A discovery update: new config, same value and history.
			e.config = config;
			ch.structure = true;
		}
		if (isGatewayDevice) {
			e.gatewayDevice = true;
			if (deviceId)
				gw.deviceId = deviceId;
			if (config.device?.name)
				gw.name = config.device.name;
			if (config.device?.sw_version)
				gw.version = config.device.sw_version;
		} else {
			e.gatewayDevice = false;
			let dev = devices.get(deviceId);
			if (!dev) {
				dev = { id: deviceId, gatewayId: gw.id, name: deviceId, model: null, entities: new Set() };
				devices.set(deviceId, dev);
			}
			dev.name = config.device.name ?? dev.name;
			dev.model = config.device.model ?? dev.model;
			dev.viaDevice = config.device.via_device;
			dev.entities.add(uid);
		}
		if (!gw.version && config.origin?.sw_version)
			gw.version = config.origin.sw_version;
		// name null (or absent): the device's main feature, named as the device.
		e.name = typeof config.name === 'string' && config.name !== '' ? config.name
			: (config.device?.name ?? parsed.objectId);
		e.available = availableOf(config);
		const st = config.state_topic && last.get(config.state_topic);
		if (st && e.at === null)
			setValue(e, st);
		learnGatewayTopics(gw, e);
		ch.entities.add(uid);
		ch.gateways.add(gw.id);
	}

	function errorTopicOf(e) {
		return ACTUATORS.has(e.component) && e.config.state_topic ? `${e.config.state_topic}/error` : null;
	}

	// Every message the page receives: returns what changed,
	// { structure, gateways, entities } (structure: entities came or went,
	// so the page rebuilds its layout and subscriptions() may differ).
	function handle(topic, payloadString, retained = false, nowMs = Date.now()) {
		const ch = changes();
		const payload = String(payloadString ?? '');
		const parsed = parseConfigTopic(topic, prefix);
		if (parsed) {
			handleConfig(topic, parsed, payload, ch);
			return ch;
		}
		const msg = { payload, retained: Boolean(retained), at: nowMs, seq: ++seq };
		last.set(topic, msg);
		for (const e of entities.values()) {
			const c = e.config;
			if (c.state_topic === topic) {
				setValue(e, msg);
				e.error = ''; // a confirmed state supersedes the last refusal
				ch.entities.add(e.id);
			}
			if (errorTopicOf(e) === topic) {
				const json = parseObject(payload);
				e.error = json && typeof json.error === 'string' ? json.error : payload;
				e.errorAt = nowMs;
				ch.entities.add(e.id);
			}
			if (availabilityList(c).some((a) => a.topic === topic)) {
				const was = e.available;
				e.available = availableOf(c);
				if (was !== e.available)
					ch.entities.add(e.id);
			}
		}
		for (const gw of gateways.values()) {
			if (gw.statusTopic === topic && setStatus(gw, msg))
				ch.gateways.add(gw.id);
			if (gw.statsTopic === topic && setStats(gw, msg))
				ch.gateways.add(gw.id);
		}
		return ch;
	}

	// The topics the page must be subscribed to now, sorted.
	function subscriptions() {
		const topics = new Set([`${prefix}/+/+/+/config`]);
		for (const e of entities.values()) {
			if (e.config.state_topic)
				topics.add(e.config.state_topic);
			for (const a of availabilityList(e.config))
				topics.add(a.topic);
			const err = errorTopicOf(e);
			if (err)
				topics.add(err);
		}
		for (const gw of gateways.values())
			for (const t of [gw.statusTopic, gw.statsTopic])
				if (t)
					topics.add(t);
		return [...topics].sort();
	}

	// Drops history older than an hour (for the sparklines of quiet sensors).
	function prune(nowMs = Date.now()) {
		for (const e of entities.values())
			trim(e.history, nowMs);
	}

	const byName = (a, b) => String(a.name).localeCompare(String(b.name)) || a.id.localeCompare(b.id);

	// The layout, sorted for display: per gateway its own entities
	// (actuators, then the rest, diagnostics last) and its devices.
	function tree() {
		const rank = (e) => (ACTUATORS.has(e.component) ? 0 : e.config.entity_category ? 2 : 1);
		return [...gateways.values()].sort(byName).map((gw) => {
			const own = [...gw.entities].map((id) => entities.get(id)).filter((e) => e.gatewayDevice)
				.sort((a, b) => rank(a) - rank(b) || byName(a, b));
			const devs = [...devices.values()].filter((d) => d.gatewayId === gw.id).sort(byName)
				.map((device) => ({ device, entities: [...device.entities].map((id) => entities.get(id)).sort(byName) }));
			return { gateway: gw, own, devices: devs };
		});
	}

	return { prefix, gateways, devices, entities, handle, subscriptions, prune, tree };
}
