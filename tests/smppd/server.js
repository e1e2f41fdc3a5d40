#!/usr/bin/env node
// Test SMSC for mcn-scp: a real third-party SMPP 3.4 server built on the npm `smpp` package
// (farhadi/node-smpp 0.5.x), so the gateway is checked against someone else's PDU codec.
//
// SMPP 3.4: §4.1 bind_transceiver, §4.4 submit_sm, §4.6 deliver_sm (MO and, with esm_class
// 0x04, delivery receipts: Appendix B receipt text, §5.3.2.12 receipted_message_id,
// §5.3.2.35 message_state), §4.11 enquire_link, §5.1.3 command_status (0x58 ESME_RTHROTTLED).
//
// Usage: node server.js --port 2775 --control-port 2776 --log submits.jsonl
//                       [--system-id mcn --password secret] [--no-receipts]
//                       [--clock-offset-ms N]
// On start it prints one JSON line {"ready":true,"port":..,"control_port":..} on stdout.
//
// Control (HTTP on 127.0.0.1:control-port, JSON bodies):
//   POST /throttle {"count":N,"status":88}  answer the next N submit_sm with that status
//   POST /hold {"on":true|false}             hold submit_sm_resp (to observe the ESME window)
//   POST /mo {"source":"..","destination":"..","text":"..","data_coding":0|8}
//        or {"source","destination","data_coding","parts":["hex",..]}: one deliver_sm per
//        part, esm_class 0x40 (UDHI), short_message = the part's octets (UDH included)
//   POST /receipt {"stat":"DELIVRD"}         stat used in later receipts
//   POST /forward-receipt {"id","owner","destination"}  receipt of a subscriber's own SMS
//   POST /crash                              exit at once (between PDUs: an SMSC crash)
//   POST /redeliver {"max":N,"delay_ms":D}   a deliver_sm answered with an error is sent again
//                                            (new sequence_number) after D ms, up to N times
//   POST /clock {"offset_ms":N}              the SMSC's clock runs N ms off the machine's
//   GET  /stats                              counters, bound sessions, held responses
//   GET  /delivers                           every deliver_sm_resp seen: kind (mo / receipt),
//                                            attempt, seq, sent_at, resp_at (s), status
//
// Every submit_sm is logged as one JSON line before it is answered (a synchronous write, so a
// crash never loses a submit that was acknowledged): seq, status, message_id, source,
// destination, data_coding, esm_class, registered_delivery, udh (hex), concat {ref,total,seq},
// text (decoded by node-smpp), raw (short_message hex).
'use strict';

const fs = require('fs');
const http = require('http');
const smpp = require('smpp');

function parseArgs(argv) {
	const args = {port: 2775, controlPort: 0, log: null, systemId: 'mcn', password: 'secret', receipts: true};
	for (let i = 2; i < argv.length; i++) {
		const a = argv[i];
		if (a === '--port') args.port = Number(argv[++i]);
		else if (a === '--control-port') args.controlPort = Number(argv[++i]);
		else if (a === '--log') args.log = argv[++i];
		else if (a === '--system-id') args.systemId = argv[++i];
		else if (a === '--password') args.password = argv[++i];
		else if (a === '--no-receipts') args.receipts = false;
		else if (a === '--clock-offset-ms') args.clockOffsetMs = Number(argv[++i]);
		else throw new Error('unknown argument ' + a);
	}
	return args;
}

const args = parseArgs(process.argv);
// The SMSC's clock (receipt dates, log times): the machine's, shifted by --clock-offset-ms /
// POST /clock, so that a test that moved its own clock to another day (tests/dates.py) talks
// to an SMSC living on that day too, as a real SMSC shares the network's time.
let clockOffsetMs = Number(args.clockOffsetMs || 0);
function nowMs() { return Date.now() + clockOffsetMs; }
const logFd = args.log ? fs.openSync(args.log, 'a') : null;
// Message ids unique across restarts: start time + counter.
const idBase = Date.now().toString(16);
let idCounter = 0;
const state = {
	throttle: 0,
	throttleStatus: smpp.ESME_RTHROTTLED,
	hold: false,
	held: [],
	receiptStat: 'DELIVRD',
	submits: 0,
	throttled: 0,
	receipts: 0,
	mo: 0,
	binds: 0,
};
const sessions = new Set();
const redeliver = {max: 5, delayMs: 200};
const delivers = [];

// §4.6: send a deliver_sm built by make(); its deliver_sm_resp is logged and, if it is not
// ESME_ROK, the message is delivered again later, as an SMSC retries (ESME_RX_T_APPN etc.).
function deliver(session, kind, make, attempt, done) {
	const sentAt = nowMs() / 1000;
	session.deliver_sm(make(), (resp) => {
		delivers.push({kind, attempt, seq: resp.sequence_number, sent_at: sentAt,
			resp_at: nowMs() / 1000, status: resp.command_status});
		if (resp.command_status === 0) {
			if (done) done();
		} else if (attempt < redeliver.max) {
			setTimeout(() => {
				if (sessions.has(session)) deliver(session, kind, make, attempt + 1, done);
			}, redeliver.delayMs);
		}
	});
}

function logLine(obj) {
	if (logFd !== null) fs.writeSync(logFd, JSON.stringify(obj) + '\n');
}

function ts(d) {
	// Appendix B: YYMMDDhhmm
	const p = (n) => ('0' + n).slice(-2);
	return p(d.getUTCFullYear() % 100) + p(d.getUTCMonth() + 1) + p(d.getUTCDate()) +
		p(d.getUTCHours()) + p(d.getUTCMinutes());
}

function sendReceipt(session, pdu, messageId, text, submitted) {
	const stat = state.receiptStat;
	const body = 'id:' + messageId + ' sub:001 dlvrd:' + (stat === 'DELIVRD' ? '001' : '000') +
		' submit date:' + ts(submitted) + ' done date:' + ts(new Date(nowMs())) +
		' stat:' + stat + ' err:000 text:' + String(text || '').replace(/[^\x20-\x7e]/g, '.').slice(0, 20);
	const states = {DELIVRD: 2, EXPIRED: 3, DELETED: 4, UNDELIV: 5, ACCEPTD: 6, UNKNOWN: 7, REJECTD: 8};
	deliver(session, 'receipt', () => ({
		source_addr: pdu.destination_addr,
		destination_addr: pdu.source_addr,
		esm_class: 0x04,
		data_coding: 0,
		short_message: Buffer.from(body, 'ascii'),
		receipted_message_id: messageId,
		message_state: states[stat] || 7,
	}), 1, () => { state.receipts++; });
}

function onSubmit(session, pdu) {
	state.submits++;
	let status = 0;
	if (state.throttle > 0) {
		state.throttle--;
		state.throttled++;
		status = state.throttleStatus;
	}
	const sm = pdu.short_message || {};
	const udhList = Array.isArray(sm.udh) ? sm.udh : [];
	let concat = null;
	for (const ie of udhList) {
		if (ie[0] === 0x00 && ie[1] === 3) concat = {ref: ie[2], total: ie[3], seq: ie[4]};
		if (ie[0] === 0x08 && ie[1] === 4) concat = {ref: ie.readUInt16BE(2), total: ie[4], seq: ie[5]};
	}
	const text = typeof sm === 'string' ? sm : (typeof sm.message === 'string' ? sm.message : null);
	const raw = Buffer.isBuffer(pdu._raw_sm) ? pdu._raw_sm.toString('hex') : null;
	const messageId = status === 0 ? idBase + '-' + (++idCounter).toString(16) : '';
	logLine({
		at: nowMs() / 1000,
		seq: pdu.sequence_number,
		status,
		message_id: messageId,
		source: pdu.source_addr,
		destination: pdu.destination_addr,
		data_coding: pdu.data_coding,
		esm_class: pdu.esm_class,
		registered_delivery: pdu.registered_delivery,
		udh: udhList.length ? Buffer.concat([Buffer.from([udhList.reduce((n, ie) => n + ie.length, 0)]), ...udhList]).toString('hex') : '',
		concat,
		text,
		raw,
	});
	const resp = status === 0 ? pdu.response({message_id: messageId}) : pdu.response({command_status: status});
	const answer = () => {
		session.send(resp);
		if (status === 0 && args.receipts && (pdu.registered_delivery & 0x03)) {
			const submitted = new Date(nowMs());
			setImmediate(() => sendReceipt(session, pdu, messageId, text, submitted));
		}
	};
	if (state.hold) state.held.push(answer);
	else answer();
}

// Keep the raw short_message for the log: node-smpp decodes it in place.
const origFromBuffer = smpp.PDU.prototype.fromBuffer;
smpp.PDU.prototype.fromBuffer = function (buffer) {
	const r = origFromBuffer.call(this, buffer);
	if (this.command === 'submit_sm') {
		// short_message sits after the mandatory header fields; re-read the length-prefixed octets
		try {
			let off = 16;
			const cstr = () => { const e = buffer.indexOf(0, off); off = e + 1; };
			cstr(); off += 2; cstr(); off += 2; cstr();           // service_type, src ton/npi, src, dst ton/npi, dst
			off += 3; cstr(); cstr(); off += 4;                      // esm, pid, prio, sched, validity, rd..dflt
			const len = buffer[off];
			this._raw_sm = buffer.slice(off + 1, off + 1 + len);
		} catch (e) { /* logging aid only */ }
	}
	return r;
};

const server = smpp.createServer((session) => {
	let bound = false;
	sessions.add(session);
	session.on('close', () => sessions.delete(session));
	session.on('error', () => {});
	session.on('bind_transceiver', (pdu) => {
		if (pdu.system_id !== args.systemId || pdu.password !== args.password) {
			session.send(pdu.response({command_status: smpp.ESME_RBINDFAIL}));
			session.close();
			return;
		}
		bound = true;
		state.binds++;
		session.send(pdu.response({system_id: 'smppd'}));
	});
	session.on('submit_sm', (pdu) => {
		if (!bound) {
			session.send(pdu.response({command_status: smpp.ESME_RINVBNDSTS}));
			return;
		}
		onSubmit(session, pdu);
	});
	session.on('enquire_link', (pdu) => session.send(pdu.response()));
	session.on('unbind', (pdu) => {
		session.send(pdu.response());
		session.close();
	});
	session.on('deliver_sm_resp', () => {});
});

function startMo(body) {
	const text = String(body.text || '');
	const dc = body.data_coding !== undefined ? body.data_coding : (/^[\x20-\x7e]*$/.test(text) ? 0 : 8);
	let n = 0;
	if (Array.isArray(body.parts)) {
		for (const s of sessions) {
			for (const hex of body.parts) {
				deliver(s, 'mo', () => ({
					source_addr: String(body.source || ''),
					destination_addr: String(body.destination || ''),
					esm_class: 0x40,
					data_coding: Number(body.data_coding || 0),
					short_message: Buffer.from(String(hex), 'hex'),
				}), 1, null);
			}
			n++;
		}
		state.mo += n;
		return n;
	}
	for (const s of sessions) {
		deliver(s, 'mo', () => ({
			source_addr: String(body.source || ''),
			destination_addr: String(body.destination || ''),
			esm_class: 0,
			data_coding: dc,
			short_message: text,
		}), 1, null);
		n++;
	}
	state.mo += n;
	return n;
}

const control = http.createServer((req, res) => {
	let data = '';
	req.on('data', (c) => { data += c; });
	req.on('end', () => {
		let body = {};
		try { body = data ? JSON.parse(data) : {}; } catch (e) { res.writeHead(400); res.end('bad json'); return; }
		let out = {ok: true};
		if (req.method === 'POST' && req.url === '/throttle') {
			state.throttle = Number(body.count || 0);
			state.throttleStatus = Number(body.status || smpp.ESME_RTHROTTLED);
		} else if (req.method === 'POST' && req.url === '/hold') {
			state.hold = !!body.on;
			if (!state.hold) { const h = state.held; state.held = []; h.forEach((f) => f()); }
		} else if (req.method === 'POST' && req.url === '/mo') {
			out.sent = startMo(body);
		} else if (req.method === 'POST' && req.url === '/receipt') {
			state.receiptStat = String(body.stat || 'DELIVRD');
		} else if (req.method === 'POST' && req.url === '/forward-receipt') {
			// the receipt of an SMS a subscriber sent through this SMSC (not through the ESME),
			// forwarded to every bound ESME: source = original recipient, destination = sender
			const fake = {destination_addr: String(body.destination), source_addr: String(body.owner)};
			sessions.forEach((sess) => sendReceipt(sess, fake, String(body.id), '', new Date(nowMs())));
			out.sent = sessions.size;
		} else if (req.method === 'POST' && req.url === '/clock') {
			clockOffsetMs = Number(body.offset_ms || 0);
		} else if (req.method === 'POST' && req.url === '/crash') {
			// exit from the event loop: never between logging a submit and answering it
			res.writeHead(200, {'Content-Type': 'application/json'});
			res.end(JSON.stringify(out), () => process.exit(0));
			return;
		} else if (req.method === 'POST' && req.url === '/redeliver') {
			redeliver.max = Number(body.max !== undefined ? body.max : 5);
			redeliver.delayMs = Number(body.delay_ms !== undefined ? body.delay_ms : 200);
		} else if (req.method === 'GET' && req.url === '/delivers') {
			out = delivers;
		} else if (req.method === 'GET' && req.url === '/stats') {
			out = Object.assign({}, state, {held: state.held.length, sessions: sessions.size});
		} else {
			res.writeHead(404); res.end('not found'); return;
		}
		res.writeHead(200, {'Content-Type': 'application/json'});
		res.end(JSON.stringify(out));
	});
});

server.listen(args.port, '127.0.0.1', () => {
	control.listen(args.controlPort, '127.0.0.1', () => {
		process.stdout.write(JSON.stringify({ready: true, port: server.address().port, control_port: control.address().port}) + '\n');
	});
});
process.on('SIGTERM', () => process.exit(0));
