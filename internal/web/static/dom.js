// DOM and formatting helpers. Everything shown is set as text
// (textContent / text nodes), never parsed as HTML: task text, metadata
// and results are user input.

// h builds an element: h('td', {class: 'num'}, 'text', child, ...).
// Attributes starting with "on" are event listeners; null children are
// skipped; strings and numbers become text nodes.
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

// s builds an SVG element with attributes.
export function s(tag, attrs, ...children) {
  const el = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c == null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

// fill replaces el's children.
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

// badge shows a status with its colour.
export function badge(status) {
  return h('span', {class: 'badge ' + status}, String(status).replace('_', ' '));
}

// ago writes how long ago an ISO time (or ms timestamp) was: "4 s", "3 min".
export function ago(t) {
  if (t == null) return '—';
  const ms = Date.now() - (typeof t === 'number' ? t : Date.parse(t));
  return duration(Math.max(0, ms)) + ' ago';
}

// duration writes a length of time in ms for people.
export function duration(ms) {
  if (ms == null) return '—';
  if (ms < 1000) return Math.round(ms) + ' ms';
  const sec = ms / 1000;
  if (sec < 60) return (sec < 10 ? sec.toFixed(1) : Math.round(sec)) + ' s';
  const min = sec / 60;
  if (min < 60) return Math.floor(min) + ' min ' + Math.round(sec % 60) + ' s';
  const hours = min / 60;
  if (hours < 48) return Math.floor(hours) + ' h ' + Math.round(min % 60) + ' min';
  return Math.round(hours / 24) + ' d';
}

// clock writes an ISO time as local date and time.
export function clock(t) {
  if (!t) return '—';
  const d = new Date(t);
  return d.toLocaleString(undefined, {month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit', second: '2-digit'});
}

// json pretty-prints a value.
export function json(v) {
  return JSON.stringify(v, null, 2);
}
