// rawws frame inspector: shows the decoded frames of the viewer's own WebSocket connection.
//
// The server reports them on that same connection as {"type": "inspect", "frames": [...]}
// messages when the connection was opened with ?inspect=1 (docs/tools.md, "The inspector").
// Two users: the /inspect page (below, when #inspect-page exists) and the demo page's
// "Frames" panel (app.js passes the reports to window.rawwsInspector.report()).
(() => {
  'use strict';

  const MAX_ROWS = 500;  // older rows are removed: the table stays bounded
  const STORAGE_KEY = 'rawws.inspect';

  function cell(row, text, className) {
    const td = document.createElement('td');
    td.textContent = text;
    if (className) td.className = className;
    row.appendChild(td);
    return td;
  }

  // Append the frames of one report to a <table> (its <tbody>) and update its counters.
  function render(table, report) {
    const body = table.tBodies[0];
    let count = Number(table.dataset.count || 0);
    for (const frame of report.frames || []) {
      count += 1;
      const row = document.createElement('tr');
      row.className = `frame ${frame.dir}${frame.violation ? ' violation' : ''}`;
      row.dataset.opcode = String(frame.opcode);
      row.dataset.dir = frame.dir;
      row.dataset.length = String(frame.length);
      row.dataset.size = String(frame.size);
      cell(row, String(count), 'num');
      cell(row, frame.dir === 'c2s' ? '→ sent' : '← received', 'dir');
      cell(row, String(frame.opcode), 'opcode');
      cell(row, frame.fin ? '1' : '0', 'fin');
      cell(row, frame.rsv.map((bit) => (bit ? '1' : '0')).join(''), 'rsv');
      cell(row, frame.mask || '—', 'mask');
      cell(row, String(frame.length), 'length');
      cell(row, frame.compressed ? `${frame.length} → ${frame.size}` : '—', 'size');
      cell(row, frame.preview, 'preview');
      cell(row, frame.violation || '', 'problem');
      body.appendChild(row);
    }
    while (body.rows.length > MAX_ROWS) body.deleteRow(0);
    table.dataset.count = String(count);
    const holder = table.closest('section');
    const note = holder && holder.querySelector('.inspect-note');
    if (note) {
      note.textContent = `${count} frame${count === 1 ? '' : 's'} shown; ${report.hidden || 0} `
        + 'report frames not shown (they would report themselves without end)'
        + (report.dropped ? `; ${report.dropped} dropped` : '');
    }
  }

  // --- the demo page's panel -----------------------------------------------------------------

  function panelTable() { return document.getElementById('frames-table'); }

  function enabled() {
    try { return window.localStorage.getItem(STORAGE_KEY) === '1'; } catch { return false; }
  }

  function initPanel() {
    const toggle = document.getElementById('frames-toggle');
    if (!toggle) return;
    toggle.checked = enabled();
    document.getElementById('frames-body').hidden = !toggle.checked;
    toggle.addEventListener('change', () => {
      try { window.localStorage.setItem(STORAGE_KEY, toggle.checked ? '1' : '0'); } catch { /* */ }
      document.getElementById('frames-body').hidden = !toggle.checked;
      // The server starts (or stops) reporting on a new connection.
      if (window.rawwsChat && window.rawwsChat.reconnect) window.rawwsChat.reconnect();
    });
  }

  // --- the /inspect page ---------------------------------------------------------------------

  function initPage() {
    const page = document.getElementById('inspect-page');
    if (!page) return;
    const table = document.getElementById('inspect-table');
    const form = document.getElementById('inspect-connect');
    const composer = document.getElementById('inspect-composer');
    const status = document.getElementById('inspect-status');
    let ws = null;

    function setStatus(text) { status.textContent = text; }

    function send(message) {
      if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(message));
    }

    form.addEventListener('submit', (event) => {
      event.preventDefault();
      if (ws) ws.close(1000);
      const name = document.getElementById('inspect-name').value.trim();
      const room = document.getElementById('inspect-room').value.trim() || 'lobby';
      const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
      const query = new URLSearchParams({ inspect: '1' });
      if (name) query.set('user_id', name);
      const socket = new WebSocket(`${scheme}//${location.host}/ws?${query}`);
      ws = socket;
      setStatus('Connecting…');
      socket.addEventListener('open', () => {
        setStatus(`Connected (extensions: ${socket.extensions || 'none'})`);
        send({ type: 'join', room, id: 'join' });
        composer.hidden = false;
      });
      socket.addEventListener('message', (event) => {
        let message;
        try { message = JSON.parse(event.data); } catch { return; }
        if (message && message.type === 'inspect') render(table, message);
        else if (message && message.type === 'welcome') {
          setStatus(`Connected as ${message.user_id} (extensions: ${socket.extensions || 'none'})`);
        }
      });
      socket.addEventListener('close', (event) => {
        if (socket === ws) {
          setStatus(`Closed: ${event.code}${event.reason ? ` ${event.reason}` : ''}`);
          composer.hidden = true;
        }
      });
    });

    composer.addEventListener('submit', (event) => {
      event.preventDefault();
      const input = document.getElementById('inspect-message');
      const room = document.getElementById('inspect-room').value.trim() || 'lobby';
      if (!input.value) return;
      send({ type: 'message', room, content: input.value });
      input.value = '';
    });
    document.getElementById('inspect-ping').addEventListener('click', () => send({ type: 'ping' }));
  }

  window.rawwsInspector = Object.freeze({
    enabled,
    report(message) { const table = panelTable(); if (table) render(table, message); },
  });

  function init() { initPanel(); initPage(); }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
