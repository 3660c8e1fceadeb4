// SPDX-License-Identifier: MIT
// The dashboard's model against discovery and state messages shaped as
// sensorgate publishes them (gateway/discovery.c, gateway/gateway_discovery.c).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
	createModel, parseConfigTopic, decodeValue, commandPayload, formatValue, formatAge, ageText,
	togglePayload, switchIsOn, sparkPath, HISTORY_MAX, HISTORY_MS,
} from '../model.js';

const T0 = Date.UTC(2026, 11, 5, 10, 0, 0);
const P = 'homeassistant';

function gatewayDevice(gw) {
	return { identifiers: [`sensorgate_${gw}`], name: `sensorgate ${gw}`, manufacturer: 'sensorgate',
		model: 'sensorgate gateway', sw_version: '0.1.0' };
}
const origin = { name: 'sensorgate', sw_version: '0.1.0' };
const gwAvail = (gw) => ({ topic: `myhome/gateway/${gw}/status`, payload_available: 'online',
	payload_not_available: 'offline' });

// One discovery message of gateway GW: [topic, payload].
function reading(gw, dev, field, extra = {}) {
	return [`${P}/${extra.component ?? 'sensor'}/${gw}/${dev}_${field}/config`, JSON.stringify({
		name: field, unique_id: `sensorgate_${gw}_${dev}_${field}`, object_id: `${dev}_${field}`,
		default_entity_id: `sensor.${dev}_${field}`, state_topic: `myhome/${dev}/${field}`,
		availability: [gwAvail(gw)],
		device: { identifiers: [`sensorgate_${gw}_${dev}`], name: dev, model: 'bme280', via_device: `sensorgate_${gw}` },
		origin, ...extra, component: undefined,
	})];
}
function gatewayStatus(gw) {
	return [`${P}/binary_sensor/${gw}/gateway_status/config`, JSON.stringify({
		name: 'Status', unique_id: `sensorgate_${gw}_gateway_status`, state_topic: `myhome/gateway/${gw}/status`,
		payload_on: 'online', payload_off: 'offline', device_class: 'connectivity', entity_category: 'diagnostic',
		device: gatewayDevice(gw), origin,
	})];
}
function health(gw, component, object, name, template, extra = {}) {
	return [`${P}/${component}/${gw}/${object}/config`, JSON.stringify({
		name, unique_id: `sensorgate_${gw}_${object}`, state_topic: `myhome/gateway/${gw}/stats`,
		value_template: template, entity_category: 'diagnostic', availability: [gwAvail(gw)],
		device: gatewayDevice(gw), origin, ...extra,
	})];
}
function actuator(gw, component, name, extra) {
	return [`${P}/${component}/${gw}/${name}/config`, JSON.stringify({
		name, unique_id: `sensorgate_${gw}_${name}`, command_topic: `myhome/${name}/set`,
		state_topic: `myhome/${name}`, availability: [gwAvail(gw)], device: gatewayDevice(gw), origin, ...extra,
	})];
}

const temperature = (gw = 'gw1') => reading(gw, 'env', 'temperature', {
	value_template: '{{ value_json.value }}', unit_of_measurement: '°C', device_class: 'temperature',
	state_class: 'measurement', suggested_display_precision: 1,
});
const light = (gw = 'gw1') => actuator(gw, 'switch', 'light', {
	payload_on: 'ON', payload_off: 'OFF', state_on: 'ON', state_off: 'OFF' });
const dimmer = (gw = 'gw1') => actuator(gw, 'number', 'dimmer', { min: 0, max: 10, step: 0.5, unit_of_measurement: '%' });
const mode = (gw = 'gw1') => actuator(gw, 'select', 'mode', { options: ['auto', 'manual', 'off'] });

function feed(model, msgs, retained = true, at = T0) {
	for (const [t, p] of msgs)
		model.handle(t, p, retained, at);
}

function gw1(model) {
	feed(model, [gatewayStatus('gw1'), temperature(), light(), dimmer(), mode(),
		health('gw1', 'sensor', 'gateway_spool_depth', 'Spool depth', '{{ value_json.spool_depth }}',
			{ unit_of_measurement: 'messages', suggested_display_precision: 0 }),
		health('gw1', 'binary_sensor', 'gateway_connected', 'Broker connected',
			"{{ 'ON' if value_json.connected else 'OFF' }}", { device_class: 'connectivity' })]);
}

test('parseConfigTopic: sensorgate topics, other shapes rejected', () => {
	assert.deepEqual(parseConfigTopic('homeassistant/sensor/gw1/env_temperature/config'),
		{ component: 'sensor', nodeId: 'gw1', objectId: 'env_temperature' });
	assert.deepEqual(parseConfigTopic('ha/x/switch/gw2/light/config', 'ha/x'),
		{ component: 'switch', nodeId: 'gw2', objectId: 'light' });
	assert.equal(parseConfigTopic('homeassistant/sensor/gw1/env_temperature/config', 'other'), null);
	assert.equal(parseConfigTopic('homeassistant/sensor/env_temperature/config'), null); // no node id
	assert.equal(parseConfigTopic('homeassistant/sensor/gw1/env_temperature/state'), null);
	assert.equal(parseConfigTopic('homeassistant/sensor/gw1/a/b/config'), null);
	assert.equal(parseConfigTopic('homeassistant/sensor//x/config'), null);
	assert.equal(parseConfigTopic('myhome/env/temperature'), null);
});

test('discovery adds, groups under gateway and device, updates and deletes', () => {
	const m = createModel();
	const ch = m.handle(...temperature(), true, T0);
	assert.equal(ch.structure, true);
	assert.ok(ch.entities.has('sensorgate_gw1_env_temperature'));
	gw1(m);
	assert.deepEqual([...m.gateways.keys()], ['gw1']);
	const gw = m.gateways.get('gw1');
	assert.equal(gw.name, 'sensorgate gw1');
	assert.equal(gw.version, '0.1.0');
	assert.equal(gw.deviceId, 'sensorgate_gw1');
	assert.equal(gw.statusTopic, 'myhome/gateway/gw1/status');
	assert.equal(gw.statsTopic, 'myhome/gateway/gw1/stats');
	const [node] = m.tree();
	assert.deepEqual(node.devices.map((d) => d.device.id), ['sensorgate_gw1_env']);
	assert.equal(node.devices[0].device.name, 'env');
	assert.equal(node.devices[0].device.model, 'bme280');
	assert.deepEqual(node.devices[0].entities.map((e) => e.id), ['sensorgate_gw1_env_temperature']);
	// the gateway's own: actuators first, diagnostics last
	assert.deepEqual(node.own.map((e) => e.id).slice(0, 3).sort(),
		['sensorgate_gw1_dimmer', 'sensorgate_gw1_light', 'sensorgate_gw1_mode']);
	assert.equal(node.own.at(-1).config.entity_category, 'diagnostic');

	// an update keeps the value, takes the new config
	m.handle('myhome/env/temperature', '{"value":21.44,"unit":"°C"}', false, T0);
	const [t, p] = temperature();
	m.handle(t, JSON.stringify({ ...JSON.parse(p), suggested_display_precision: 2 }), false, T0 + 1);
	const e = m.entities.get('sensorgate_gw1_env_temperature');
	assert.equal(e.value, 21.44);
	assert.equal(formatValue(e), '21.44');

	// an empty payload deletes; the device goes with its last entity
	const del = m.handle(t, '', false, T0 + 2);
	assert.equal(del.structure, true);
	assert.equal(m.entities.has('sensorgate_gw1_env_temperature'), false);
	assert.equal(m.devices.has('sensorgate_gw1_env'), false);
	assert.equal(m.tree()[0].devices.length, 0);
	// deleting what is unknown changes nothing
	assert.equal(m.handle(t, '', false, T0 + 3).structure, false);
});

test('the whole gateway withdrawn: it disappears', () => {
	const m = createModel();
	feed(m, [gatewayStatus('gw1'), temperature()]);
	m.handle(gatewayStatus('gw1')[0], '', false, T0);
	assert.ok(m.gateways.has('gw1'));
	m.handle(temperature()[0], '', false, T0);
	assert.equal(m.gateways.has('gw1'), false);
});

test('other discovery is ignored', () => {
	const m = createModel();
	m.handle('homeassistant/sensor/zigbee/kitchen_t/config', JSON.stringify({
		unique_id: '0x00158d_temperature', state_topic: 'zigbee2mqtt/kitchen', name: 't' }), true, T0);
	m.handle('homeassistant/device_automation/gw1/btn_press_single/config', JSON.stringify({
		automation_type: 'trigger', topic: 'myhome/btn/press', type: 'button_short_press', subtype: 'button_1',
		payload: 'single', device: { identifiers: ['sensorgate_gw1_btn'], name: 'btn' } }), true, T0);
	m.handle('homeassistant/sensor/gw1/broken/config', '{not json', true, T0);
	m.handle('otherprefix/sensor/gw1/env_temperature/config', temperature()[1], true, T0);
	assert.equal(m.entities.size, 0);
	assert.equal(m.gateways.size, 0);
	assert.deepEqual(m.subscriptions(), ['homeassistant/+/+/+/config']);
});

test('a custom prefix', () => {
	const m = createModel({ prefix: 'hass' });
	m.handle(temperature()[0].replace(/^homeassistant/, 'hass'), temperature()[1], true, T0);
	assert.equal(m.entities.size, 1);
	assert.ok(m.subscriptions().includes('hass/+/+/+/config'));
});

test('name null is the device\'s main feature: the device name', () => {
	const m = createModel();
	const [t, p] = reading('gw1', 'door', 'contact', { name: null, component: 'binary_sensor' });
	m.handle(t.replace('/sensor/', '/binary_sensor/'), p, true, T0);
	assert.equal(m.entities.get('sensorgate_gw1_door_contact').name, 'door');
});

test('plain and JSON payloads', () => {
	const m = createModel();
	feed(m, [temperature(), reading('gw1', 'env', 'humidity', { unit_of_measurement: '%',
		suggested_display_precision: 0 })]);
	m.handle('myhome/env/temperature', '{"value":21.43,"unit":"°C","ts":"2026-12-05T10:00:00.000Z"}', false, T0 + 5000);
	m.handle('myhome/env/humidity', '48.6', false, T0 + 5000);
	const t = m.entities.get('sensorgate_gw1_env_temperature');
	const h = m.entities.get('sensorgate_gw1_env_humidity');
	assert.equal(t.value, 21.43);
	assert.equal(t.ts, T0);
	assert.equal(t.at, T0 + 5000);
	assert.equal(formatValue(t), '21.4');
	assert.equal(formatValue(h), '49');
	assert.equal(h.number, 48.6);
	// lenient: a JSON object with "value" without a template, text without JSON despite one
	assert.equal(decodeValue({ component: 'sensor' }, '{"value":3}').value, 3);
	assert.equal(decodeValue({ component: 'sensor', value_template: '{{ value_json.value }}' }, '7.5').value, 7.5);
	assert.equal(decodeValue({ component: 'sensor' }, 'idle').value, 'idle');
	assert.equal(decodeValue({ component: 'sensor' }, 'idle').number, null);
	assert.equal(decodeValue({ component: 'sensor' }, '').value, null);
	assert.equal(decodeValue({ component: 'sensor', value_template: '{{ value_json.a.b }}' }, '{"a":{"b":-2}}').value, -2);
});

test('binary sensors: payload_on/payload_off as ON/OFF', () => {
	const bit = { component: 'binary_sensor', payload_on: '1', payload_off: '0' };
	assert.equal(decodeValue(bit, '1').value, 'ON');
	assert.equal(decodeValue(bit, '0').value, 'OFF');
	assert.equal(decodeValue(bit, 'maybe').value, null);
	assert.equal(decodeValue({ ...bit, value_template: '{{ value_json.value }}' }, '{"value":1}').value, 'ON');
	assert.equal(decodeValue({ component: 'binary_sensor' }, 'OFF').value, 'OFF');
	const conn = { component: 'binary_sensor', value_template: "{{ 'ON' if value_json.connected else 'OFF' }}" };
	assert.equal(decodeValue(conn, '{"connected":true,"spool_depth":0}').value, 'ON');
	assert.equal(decodeValue(conn, '{"connected":false}').value, 'OFF');
});

test('events: the last event name and when', () => {
	const m = createModel();
	const [t, p] = reading('gw1', 'btn', 'press', { component: 'event', event_types: ['single', 'double', 'long'],
		value_template: '{"event_type":"{{ value_json.value }}"}', device_class: 'button' });
	m.handle(t.replace('/sensor/', '/event/'), p, true, T0);
	const e = m.entities.get('sensorgate_gw1_btn_press');
	assert.equal(e.component, 'event');
	m.handle('myhome/btn/press', '{"value":"double","ts":"2026-12-05T10:00:00.000Z"}', false, T0 + 10);
	assert.equal(formatValue(e), 'double');
	assert.equal(e.at, T0 + 10);
	assert.equal(e.retained, false);
	assert.equal(decodeValue({ component: 'event', value_template: '{"event_type":"{{ value }}"}' }, 'long').value, 'long');
});

test('availability: one topic, two topics, modes', () => {
	const m = createModel();
	const [t, p] = reading('gw1', 'env', 'pressure', { availability: [gwAvail('gw1'),
		{ topic: 'myhome/gateway/gw1/device/env/status', payload_available: 'online', payload_not_available: 'offline' }],
		availability_mode: 'all' });
	feed(m, [temperature(), [t, p]]);
	const one = m.entities.get('sensorgate_gw1_env_temperature');
	const two = m.entities.get('sensorgate_gw1_env_pressure');
	assert.equal(one.available, false, 'never heard: not available');
	m.handle('myhome/gateway/gw1/status', 'online', true, T0);
	assert.equal(one.available, true);
	assert.equal(two.available, false, 'the device status is still unknown');
	const ch = m.handle('myhome/gateway/gw1/device/env/status', 'online', false, T0);
	assert.ok(ch.entities.has(two.id));
	assert.equal(two.available, true);
	m.handle('myhome/gateway/gw1/device/env/status', 'offline', false, T0);
	assert.equal(two.available, false);
	assert.equal(one.available, true);
	m.handle('myhome/gateway/gw1/status', 'offline', false, T0);
	assert.equal(one.available, false);
	// absent mode: as strict as "all"; "any" and "latest" when asked
	const m2 = createModel();
	const base = JSON.parse(p);
	delete base.availability_mode;
	m2.handle(t, JSON.stringify(base), true, T0);
	m2.handle('myhome/gateway/gw1/status', 'online', true, T0);
	m2.handle('myhome/gateway/gw1/device/env/status', 'offline', true, T0);
	assert.equal(m2.entities.get(two.id).available, false);
	m2.handle(t, JSON.stringify({ ...base, availability_mode: 'any' }), true, T0);
	assert.equal(m2.entities.get(two.id).available, true);
	m2.handle(t, JSON.stringify({ ...base, availability_mode: 'latest' }), true, T0);
	assert.equal(m2.entities.get(two.id).available, false);
	// no availability at all: always available
	assert.equal(decodeValue({ component: 'sensor' }, '1').value, 1);
	const m3 = createModel();
	const noAvail = JSON.parse(temperature()[1]);
	delete noAvail.availability;
	m3.handle(temperature()[0], JSON.stringify(noAvail), true, T0);
	assert.equal(m3.entities.get(one.id).available, true);
});

test('gateway status: since, and the retained-at-connect flag', () => {
	const m = createModel();
	gw1(m);
	const gw = m.gateways.get('gw1');
	assert.equal(gw.status, 'unknown');
	const ch = m.handle('myhome/gateway/gw1/status', 'online', true, T0 + 100);
	assert.ok(ch.gateways.has('gw1'));
	assert.equal(gw.status, 'online');
	assert.equal(gw.since, T0 + 100);
	assert.equal(gw.sinceBeforeOpen, true);
	// the same status again moves nothing
	assert.equal(m.handle('myhome/gateway/gw1/status', 'online', false, T0 + 200).gateways.size, 0);
	assert.equal(gw.since, T0 + 100);
	m.handle('myhome/gateway/gw1/status', 'offline', false, T0 + 300);
	assert.equal(gw.status, 'offline');
	assert.equal(gw.since, T0 + 300);
	assert.equal(gw.sinceBeforeOpen, false);
	m.handle('myhome/gateway/gw1/status', '', true, T0 + 400);
	assert.equal(gw.status, 'unknown');
	// the gateway_status entity reads the same topic
	m.handle('myhome/gateway/gw1/status', 'online', false, T0 + 500);
	assert.equal(m.entities.get('sensorgate_gw1_gateway_status').value, 'ON');
});

test('status seen before the gateway is announced still counts', () => {
	const m = createModel();
	feed(m, [temperature()]);
	m.handle('myhome/gateway/gw1/status', 'online', true, T0);
	assert.equal(m.gateways.get('gw1').status, 'online', 'learnt from the availability list');
	const m2 = createModel();
	m2.handle('myhome/gateway/gw1/status', 'online', true, T0);
	feed(m2, [gatewayStatus('gw1')], true, T0 + 50);
	assert.equal(m2.gateways.get('gw1').status, 'online');
	assert.equal(m2.gateways.get('gw1').sinceBeforeOpen, true);
});

test('stats JSON: numeric and boolean fields, and the health entities', () => {
	const m = createModel();
	gw1(m);
	m.handle('myhome/gateway/gw1/stats', JSON.stringify({ connected: true, readings: 120, dropped: 2, spool_depth: 5,
		in_flight: 1, readings_per_s: 0.4, uptime_s: 3600, note: 'text is left out' }), true, T0);
	const gw = m.gateways.get('gw1');
	assert.equal(gw.stats.readings_per_s, 0.4);
	assert.equal(gw.stats.spool_depth, 5);
	assert.equal(gw.stats.dropped, 2);
	assert.equal(gw.stats.connected, true);
	assert.equal('note' in gw.stats, false);
	assert.equal(gw.statsAt, T0);
	assert.equal(formatValue(m.entities.get('sensorgate_gw1_gateway_spool_depth')), '5');
	assert.equal(m.entities.get('sensorgate_gw1_gateway_connected').value, 'ON');
	// not JSON: the last stats stay
	m.handle('myhome/gateway/gw1/stats', 'garbage', false, T0 + 1);
	assert.equal(gw.stats.spool_depth, 5);
});

test('history: numeric values of the last hour, bounded', () => {
	const m = createModel();
	feed(m, [temperature()]);
	const e = m.entities.get('sensorgate_gw1_env_temperature');
	for (let i = 0; i < HISTORY_MAX + 100; i++)
		m.handle('myhome/env/temperature', String(20 + (i % 7) / 10), false, T0 + i * 1000);
	assert.equal(e.history.length, HISTORY_MAX);
	assert.equal(e.history.at(-1).t, T0 + (HISTORY_MAX + 99) * 1000);
	m.handle('myhome/env/temperature', 'n/a', false, T0 + 1e6);
	assert.equal(e.history.length, HISTORY_MAX, 'text does not enter the history');
	// an hour later, only the new point
	const later = T0 + (HISTORY_MAX + 99) * 1000 + HISTORY_MS + 1;
	m.handle('myhome/env/temperature', '19', false, later);
	assert.deepEqual(e.history, [{ t: later, v: 19 }]);
	m.prune(later + HISTORY_MS + 1);
	assert.equal(e.history.length, 0);
	// sparkline path
	assert.equal(sparkPath([], T0), '');
	const d = sparkPath([{ t: T0 - HISTORY_MS / 2, v: 1 }, { t: T0, v: 3 }], T0, 100, 20);
	assert.match(d, /^M50 19 L100 1$/);
	assert.equal(sparkPath([{ t: T0 - 2 * HISTORY_MS, v: 1 }], T0), '');
});

test('formatting', () => {
	const fmt = (value, p) => formatValue({ value, config: { suggested_display_precision: p } });
	assert.equal(fmt(21.456, 1), '21.5');
	assert.equal(fmt(21, 2), '21.00');
	assert.equal(fmt(-0.04, 1), '0.0');
	assert.equal(fmt(1013.25, undefined), '1013.25');
	assert.equal(fmt('ON', 1), 'ON');
	assert.equal(fmt(null, 1), '');
	assert.equal(formatAge(0), '0 s');
	assert.equal(formatAge(59_999), '59 s');
	assert.equal(formatAge(60_000), '1 min');
	assert.equal(formatAge(2 * 3600_000 + 5), '2 h');
	assert.equal(formatAge(3 * 86400_000), '3 d');
	assert.equal(formatAge(-5), '0 s');
	assert.equal(formatAge(NaN), '');
	assert.equal(ageText({ at: T0, retained: false }, T0 + 5000), '5 s ago');
	assert.equal(ageText({ at: T0, retained: true }, T0 + 120_000), '≥ 2 min ago');
	assert.equal(ageText({ at: null }, T0), '');
});

test('commandPayload validates before anything is sent', () => {
	const num = { ...JSON.parse(dimmer()[1]), component: 'number' };
	assert.deepEqual(commandPayload(num, '2.5'), { ok: true, payload: '2.5' });
	assert.deepEqual(commandPayload(num, 10), { ok: true, payload: '10' });
	assert.deepEqual(commandPayload(num, ' 0 '), { ok: true, payload: '0' });
	assert.deepEqual(commandPayload(num, '4.50'), { ok: true, payload: '4.5' });
	for (const bad of ['11', '-0.5', '2.3', 'abc', '', '1e', 'NaN', 'Infinity'])
		assert.equal(commandPayload(num, bad).ok, false, bad);
	assert.match(commandPayload(num, '11').error, /range/);
	assert.match(commandPayload(num, '2.3').error, /multiple/);
	assert.match(commandPayload(num, 'abc').error, /not a number/);
	const tenth = { component: 'number', command_topic: 'x', min: 0, max: 1, step: 0.1 };
	assert.deepEqual(commandPayload(tenth, 0.1 + 0.2), { ok: true, payload: '0.3' });
	const defaults = { component: 'number', command_topic: 'x' };
	assert.equal(commandPayload(defaults, '0').ok, false, 'HA default min is 1');
	assert.equal(commandPayload(defaults, '100').ok, true);

	const sel = { ...JSON.parse(mode()[1]), component: 'select' };
	assert.deepEqual(commandPayload(sel, 'manual'), { ok: true, payload: 'manual' });
	assert.equal(commandPayload(sel, 'Manual').ok, false);
	assert.equal(commandPayload(sel, 'boost').ok, false);

	const sw = { ...JSON.parse(light()[1]), component: 'switch' };
	assert.deepEqual(commandPayload(sw, true), { ok: true, payload: 'ON' });
	assert.deepEqual(commandPayload(sw, false), { ok: true, payload: 'OFF' });
	assert.equal(commandPayload(sw, 'maybe').ok, false);
	assert.equal(commandPayload({ component: 'sensor', state_topic: 'x' }, '1').ok, false);
	const bits = { component: 'switch', command_topic: 'r/set', payload_on: '1', payload_off: '0' };
	assert.deepEqual(commandPayload(bits, true), { ok: true, payload: '1' });
});

test('switch toggling follows the confirmed state', () => {
	const m = createModel();
	feed(m, [light()]);
	const e = m.entities.get('sensorgate_gw1_light');
	assert.equal(switchIsOn(e), null);
	assert.equal(togglePayload(e), 'ON', 'unknown: payload_on');
	m.handle('myhome/light', 'ON', true, T0);
	assert.equal(e.value, 'ON');
	assert.equal(togglePayload(e), 'OFF');
	m.handle('myhome/light', 'OFF', false, T0);
	assert.equal(togglePayload(e), 'ON');
	const other = { value: 'open', config: { component: 'switch', command_topic: 'c', payload_on: 'go',
		payload_off: 'stop', state_on: 'open', state_off: 'closed' } };
	assert.equal(switchIsOn(other), true);
	assert.equal(togglePayload(other), 'stop');
});

test('actuator errors show until the next confirmed state', () => {
	const m = createModel();
	gw1(m);
	const e = m.entities.get('sensorgate_gw1_light');
	const ch = m.handle('myhome/light/error', JSON.stringify({ actuator: 'hall-light',
		error: 'invalid payload: expected ON or OFF', payload: 'maybe' }), false, T0);
	assert.ok(ch.entities.has(e.id));
	assert.equal(e.error, 'invalid payload: expected ON or OFF');
	assert.equal(m.entities.get('sensorgate_gw1_dimmer').error, '', 'only that actuator');
	m.handle('myhome/light', 'OFF', false, T0 + 1);
	assert.equal(e.error, '');
	m.handle('myhome/light/error', 'not json at all', false, T0 + 2);
	assert.equal(e.error, 'not json at all');
});

test('subscriptions grow as discovery arrives', () => {
	const m = createModel();
	assert.deepEqual(m.subscriptions(), ['homeassistant/+/+/+/config']);
	feed(m, [temperature()]);
	assert.deepEqual(m.subscriptions(), ['homeassistant/+/+/+/config', 'myhome/env/temperature',
		'myhome/gateway/gw1/status']);
	gw1(m);
	const subs = m.subscriptions();
	for (const t of ['myhome/light', 'myhome/light/error', 'myhome/dimmer', 'myhome/dimmer/error', 'myhome/mode',
		'myhome/mode/error', 'myhome/gateway/gw1/stats'])
		assert.ok(subs.includes(t), t);
	assert.equal(subs.includes('myhome/light/set'), false, 'never our own commands');
	assert.equal(new Set(subs).size, subs.length);
	m.handle(light()[0], '', false, T0);
	assert.equal(m.subscriptions().includes('myhome/light/error'), false);
});

test('a second gateway on the same broker is kept apart', () => {
	const m = createModel();
	gw1(m);
	feed(m, [gatewayStatus('gw2'), temperature('gw2').map((s) => s.replaceAll('myhome/env', 'myhome/gw2env'))]);
	m.handle('myhome/gateway/gw1/status', 'online', true, T0);
	m.handle('myhome/gateway/gw2/status', 'offline', true, T0);
	m.handle('myhome/gw2env/temperature', '{"value":5}', false, T0);
	assert.deepEqual([...m.gateways.keys()].sort(), ['gw1', 'gw2']);
	assert.equal(m.gateways.get('gw1').status, 'online');
	assert.equal(m.gateways.get('gw2').status, 'offline');
	const tree = m.tree();
	assert.deepEqual(tree.map((n) => n.gateway.id), ['gw1', 'gw2']);
	assert.deepEqual(tree[1].devices.map((d) => d.device.id), ['sensorgate_gw2_env']);
	assert.equal(tree[1].devices[0].entities[0].value, 5);
	assert.equal(m.entities.get('sensorgate_gw1_env_temperature').value, null);
	assert.equal(tree[1].own.length, 1);
	assert.equal(m.gateways.get('gw2').name, 'sensorgate gw2');
});
