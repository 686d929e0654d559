// The server's doors: calls over POST /rpc (fetch), a task's history over
// GET /v1/tasks/{id}/events (fetch), live events over GET /ws. A token, when the server wants one, is kept in localStorage and
// sent as an Authorization header on fetch and as the rpc.authenticate
// first message on the WebSocket.

const TOKEN_KEY = 'taskwire.token';

export function getToken() { return localStorage.getItem(TOKEN_KEY) || ''; }
export function setToken(t) {
  if (t) localStorage.setItem(TOKEN_KEY, t);
  else localStorage.removeItem(TOKEN_KEY);
}

// RPCError is a JSON-RPC error object as an exception.
export class RPCError extends Error {
  constructor(e) {
    super(e.message);
    this.code = e.code;
    this.data = e.data;
  }
}

// AuthError: the server answered 401, or refused the WebSocket's token.
export class AuthError extends Error {}

let seq = 0;

function authHeaders(headers = {}) {
  const token = getToken();
  if (token) headers.Authorization = 'Bearer ' + token;
  return headers;
}

// call calls method with params and returns its result.
export async function call(method, params = {}) {
  const headers = authHeaders({'Content-Type': 'application/json'});
  const res = await fetch('/rpc', {
    method: 'POST', headers,
    body: JSON.stringify({jsonrpc: '2.0', id: ++seq, method, params}),
  });
  if (res.status === 401) throw new AuthError('token required');
  const body = await res.json();
  if (body.error) throw new RPCError(body.error);
  return body.result;
}

// taskEvents returns the events of task id that the server's event log
// still holds, oldest first (at most limit of the oldest).
export async function taskEvents(id, limit = 1000) {
  const res = await fetch('/v1/tasks/' + encodeURIComponent(id) + '/events?limit=' + limit, {headers: authHeaders()});
  if (res.status === 401) throw new AuthError('token required');
  const body = await res.json();
  if (body.error) throw new RPCError(body.error);
  return body.events;
}

// Codes of a refused subscription that may pass on a later attempt:
// rate limited, a backend unavailable, an internal error.
const PASSING = [-32000, -32001, -32603];

// Live follows the event stream over one WebSocket, reconnecting with
// backoff and resuming after the last event it delivered (afterEventId),
// or, before the first, from the position its subscription started at, so
// that nothing is missed across a reconnect.
export class Live {
  // onEvent(event), onState(connected, resumed), onAuth(), onReset(),
  // onRefused(error): onReset is called when the resume point is unknown
  // to the server (another database), so the page must reload its state;
  // onRefused when the server refuses the subscription for a reason a
  // retry will not change (the token's role, bad params), after which
  // Live stays down until restart.
  constructor(handlers) {
    this.h = handlers;
    this.lastId = '';
    this.backoff = 500;
    this.ws = null;
  }

  start() { this.connect(); }

  // restart drops the connection and connects again at once (a new token).
  restart() {
    if (this.ws) {
      this.ws.onclose = null;
      this.ws.close();
    }
    this.connect();
  }

  connect() {
    const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws';
    const ws = new WebSocket(url);
    this.ws = ws;
    this.authenticated = false;
    const resumed = this.lastId !== '';
    ws.onopen = () => {
      const token = getToken();
      if (token) this.send({id: 'auth', method: 'rpc.authenticate', params: {token}});
      const params = resumed ? {afterEventId: this.lastId} : {};
      this.send({id: 'subscribe', method: 'events.subscribe', params});
    };
    ws.onmessage = (m) => this.receive(JSON.parse(m.data), resumed);
    ws.onclose = (e) => {
      this.h.onState(false);
      if (e.code === 1008 && /authentication/.test(e.reason)) {
        this.h.onAuth();
        return;
      }
      setTimeout(() => this.connect(), this.backoff);
      this.backoff = Math.min(this.backoff * 2, 10000);
    };
  }

  receive(msg, resumed) {
    if (msg.method === 'events.event') {
      this.lastId = msg.params.event.id;
      this.h.onEvent(msg.params.event);
      return;
    }
    if (msg.id === 'auth') this.authenticated = !msg.error;
    if (msg.id === 'subscribe') {
      if (msg.error && msg.error.data && 'afterEventId' in msg.error.data) {
        this.lastId = '';
        this.h.onReset();
        this.ws.close();
        return;
      }
      if (msg.error) {
        this.refused(msg.error);
        return;
      }
      // Where the subscription's events start: the resume point until
      // the first of them arrives.
      this.lastId = msg.result.afterEventId;
      this.backoff = 500;
      this.h.onState(true, resumed);
    }
  }

  // refused handles a refused subscription: one that may pass later is
  // retried as a lost connection is; any other stops Live. A -32002 before
  // the token was accepted is the server asking for one: the 1008 close
  // that follows says so.
  refused(error) {
    if (error.code === -32002 && !this.authenticated) return;
    if (PASSING.includes(error.code)) {
      this.backoff = Math.max(this.backoff, (error.data && error.data.retryAfterMs) || 0);
      this.ws.close();
      return;
    }
    this.ws.onclose = null;
    this.ws.close();
    this.h.onRefused(new RPCError(error));
  }

  send(req) {
    this.ws.send(JSON.stringify({jsonrpc: '2.0', ...req}));
  }
}
