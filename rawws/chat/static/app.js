// rawws chat: the demo page's client. Plain JavaScript, no build step, no dependency.
//
// It speaks the chat protocol of docs/chat-protocol.md over one WebSocket to /ws on the page's own
// origin. Runs under the server's Content-Security-Policy: no inline script or style, no eval;
// every text from the network is inserted with textContent, never as HTML.
//
// Theory of operation:
// 1. Sign-in: `/ws?user_id=NAME` (auth off) and, when a token is given, a first message
//    {"type":"auth","token":...} (auth on; the token never goes into the URL).
// 2. On `welcome` the page re-joins its rooms with `since` (the last seq seen per room),
//    re-subscribes its topics and asks for the room list (`rooms`) and the online status of its
//    private-message partners (`presence`), both over the WebSocket (no API key needed). The
//    server marks every item delivered from the offline inbox with "offline": true, and the
//    welcome says how many follow (`offline_items`): the page shows exactly that, no guessing.
//    Once shown, each is acknowledged (`ack` with its message_id), so it never comes back.
// 3. A closed connection is retried with exponential backoff and jitter (a random delay between
//    half and all of min(MAX, BASE * 2^attempt)), except after 4001/4002 (bad token) or 1008
//    before `welcome` (authentication required): those return to the sign-in form.
// 4. Room messages are de-duplicated by `seq` within the room's stream `epoch`; a `joined` (or a
//    message) with another epoch means the room's history was lost (a server restart with the
//    in-memory store): the page says so and counts afresh. A re-join whose missed history does
//    not fit one reply (`"more": true`) reads the rest with `history` requests, page by page.
'use strict';

(() => {
  const BASE_DELAY_MS = 500;
  const MAX_DELAY_MS = 15000;
  const TOAST_MS = 8000;
  const ROOMS_REFRESH_MS = 15000;
  const LOG_LIMIT = 1000;  // lines kept per conversation on the page
  const USER_RE = /^[A-Za-z0-9_\-.~@]{1,64}$/;
  const ROOM_RE = /^[A-Za-z0-9_\-~]{1,64}(\.[A-Za-z0-9_\-~]{1,64}){0,7}$/;
  const TOPIC_RE = /^[^.\s]+(\.[^.\s]+)*$/;

  // RFC 6455 §7.4 / IANA names, the same text as rawws.sansio.codes.CLOSE_CODE_MEANINGS, plus
  // the chat layer's private codes (docs/chat-protocol.md).
  const CLOSE_MEANINGS = {
    1000: 'normal closure',
    1001: 'going away',
    1002: 'protocol error',
    1003: 'unsupported data',
    1005: 'no status code',
    1006: 'connection lost (no close frame)',
    1007: 'invalid payload data',
    1008: 'policy violation',
    1009: 'message too big',
    1010: 'mandatory extension missing',
    1011: 'internal error',
    1012: 'service restart',
    1013: 'try again later',
    1014: 'bad gateway',
    1015: 'TLS handshake failure',
    4001: 'token expired',
    4002: 'invalid token',
  };
  // What a person can do about it.
  const CLOSE_ADVICE = {
    1001: 'The server is shutting down or restarting.',
    1006: 'The network or the server went away.',
    1008: 'The server refused this connection (authentication or abuse).',
    1009: 'A message was over the server’s size limit.',
    1011: 'The server hit an internal error.',
    1012: 'The server is restarting.',
    1013: 'The server is busy or this page read too slowly.',
    4001: 'Your token has expired: sign in with a fresh one.',
    4002: 'The token was refused: check it and sign in again.',
  };
  const ERROR_TITLES = {
    bad_json: 'Malformed message',
    bad_request: 'Bad request',
    unknown_type: 'Unknown request',
    forbidden: 'Not allowed',
    not_found: 'Not found',
    rate_limited: 'Slow down',
    too_large: 'Too large',
    conflict: 'Already used',
    unavailable: 'Try again',
  };

  // --- DOM helpers ---------------------------------------------------------------------------

  const $ = (id) => document.getElementById(id);

  function h(tag, props, ...children) {
    const node = document.createElement(tag);
    if (props) {
      for (const [key, value] of Object.entries(props)) {
        if (value === undefined || value === null || value === false) continue;
        if (key === 'className') node.className = value;
        else if (key === 'text') node.textContent = value;
        else if (key === 'dataset') Object.assign(node.dataset, value);
        else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
        else node.setAttribute(key, value === true ? '' : String(value));
      }
    }
    for (const child of children) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : String(child));
    }
    return node;
  }

  function hueClass(name) {
    let hash = 0;
    for (const ch of String(name)) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
    return `hue-${hash % 8}`;
  }

  function avatar(name) {
    const initial = (String(name).match(/[A-Za-z0-9]/) || ['?'])[0].toUpperCase();
    return h('span', { className: `avatar ${hueClass(name)}`, 'aria-hidden': 'true',
                       text: initial });
  }

  function timeText(iso) {
    const date = iso ? new Date(iso) : new Date();
    if (Number.isNaN(date.getTime())) return '';
    return date.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  }

  function timeNode(iso) {
    const date = iso ? new Date(iso) : new Date();
    const valid = !Number.isNaN(date.getTime());
    return h('time', { datetime: valid ? date.toISOString() : undefined,
                       title: valid ? date.toLocaleString() : undefined,
                       text: timeText(iso) });
  }

  function contentText(value) {
    if (typeof value === 'string') return value;
    if (value && typeof value === 'object' && !Array.isArray(value)) {
      const title = value.title ?? value.subject;
      const body = value.body ?? value.text ?? value.message;
      if (typeof title === 'string' && typeof body === 'string') return `${title}: ${body}`;
      if (typeof body === 'string') return body;
      if (typeof title === 'string') return title;
    }
    try { return JSON.stringify(value); } catch { return String(value); }
  }

  function describeClose(code, reason) {
    const meaning = CLOSE_MEANINGS[code] || (code >= 4000 ? 'application-defined' : 'unknown');
    return `${code} ${meaning}${reason ? ` — “${reason}”` : ''}`;
  }

  // --- state ---------------------------------------------------------------------------------

  const state = {
    cred: null,            // {name, token, room}
    ws: null,
    opened: false,         // the current socket reached OPEN
    welcomed: false,       // the current socket got `welcome`
    user: null,
    connectionId: null,
    connectedAt: null,
    attempt: 0,
    retryTimer: 0,
    countdownTimer: 0,
    retryAt: 0,
    reconnects: 0,
    everWelcomed: false,
    lastClose: null,
    counts: { in: 0, out: 0 },
    nextId: 1,
    pending: new Map(),    // request id -> {kind, ...}
    rooms: new Map(),      // name -> Room
    directory: new Map(),  // name -> user_count from the last `rooms` reply
    online: new Map(),     // user -> true/false from `presence` (private-message partners)
    roomsTimer: 0,
    roomsDebounce: 0,
    dms: new Map(),        // user -> Thread
    topics: new Set(),     // patterns wanted (re-subscribed after a reconnect)
    confirmedTopics: new Set(),
    notifications: [],
    unreadNotifications: 0,
    active: null,          // {kind: 'room'|'dm', name}
    pendingActivate: null, // the room to show once its `joined` arrives
    probe: null,           // what /healthz said after a failed handshake
  };

  function newRoom(name) {
    return { name, joined: false, joining: false, users: [], userCount: 0, lastSeq: 0,
             seen: new Set(), log: null, unread: 0, everJoined: false, epoch: null,
             recovered: 0 };
  }

  // --- status and connection details ---------------------------------------------------------

  function setStatus(kind, text) {
    const status = $('status');
    status.dataset.state = kind;
    $('status-text').textContent = text;
    $('conn-state').textContent = text;
    $('retry-now').hidden = kind !== 'reconnecting';
    updateComposer();
  }

  function updateDetails() {
    const ws = state.ws;
    $('conn-url').textContent = ws ? ws.url.replace(/([?&]token=)[^&]*/, '$1…') : '—';
    $('conn-id').textContent = state.connectionId || '—';
    $('conn-extensions').textContent = ws && state.opened ? (ws.extensions || 'none') : '—';
    $('conn-since').textContent = state.connectedAt ? state.connectedAt.toLocaleTimeString() : '—';
    $('conn-reconnects').textContent = String(state.reconnects);
    $('conn-counts').textContent = `${state.counts.in} in · ${state.counts.out} out`;
    $('conn-last-close').textContent = state.lastClose || '—';
  }

  // --- toasts --------------------------------------------------------------------------------

  function toast({ title, body, kind = 'info', badge = null }) {
    const item = h('div', { className: `toast toast-${kind}`,
                            role: kind === 'error' ? 'alert' : undefined,
                            dataset: { kind } },
      h('div', { className: 'toast-text' },
        h('strong', { className: 'toast-title', text: title }),
        badge ? h('span', { className: 'tag', text: badge }) : null,
        body ? h('p', { className: 'toast-body', text: body }) : null),
      h('button', { type: 'button', className: 'toast-close', 'aria-label': 'Dismiss',
                    text: '×', onclick: () => item.remove() }));
    let timer = setTimeout(() => item.remove(), TOAST_MS);
    const hold = () => clearTimeout(timer);
    const release = () => { clearTimeout(timer); timer = setTimeout(() => item.remove(), TOAST_MS); };
    item.addEventListener('mouseenter', hold);
    item.addEventListener('focusin', hold);
    item.addEventListener('mouseleave', release);
    item.addEventListener('focusout', release);
    const region = $('toasts');
    region.append(item);
    while (region.children.length > 5) region.firstElementChild.remove();
  }

  // --- the socket ----------------------------------------------------------------------------

  function wsUrl() {
    const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const query = new URLSearchParams();
    if (state.cred.name) query.set('user_id', state.cred.name);
    if (window.rawwsInspector && window.rawwsInspector.enabled()) query.set('inspect', '1');
    const qs = query.toString();
    return `${scheme}//${location.host}/ws${qs ? `?${qs}` : ''}`;
  }

  function send(message) {
    const ws = state.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return false;
    ws.send(JSON.stringify(message));
    state.counts.out += 1;
    updateDetails();
    return true;
  }

  function request(message, info) {
    const id = `${info.kind}-${state.nextId++}`;
    state.pending.set(id, info);
    if (!send({ ...message, id })) {
      state.pending.delete(id);
      return null;
    }
    return id;
  }

  function connect() {
    clearTimeout(state.retryTimer);
    clearInterval(state.countdownTimer);
    if (!state.cred) return;
    let ws;
    try {
      ws = new WebSocket(wsUrl());
    } catch (err) {
      setStatus('offline', `Cannot connect: ${err.message}`);
      return;
    }
    state.ws = ws;
    state.opened = false;
    state.welcomed = false;
    state.pending.clear();
    setStatus('connecting', state.attempt ? `Reconnecting (attempt ${state.attempt})…`
                                          : 'Connecting…');
    ws.addEventListener('open', () => {
      if (ws !== state.ws) return;
      state.opened = true;
      if (state.cred.token) send({ type: 'auth', token: state.cred.token, id: 'auth' });
      setStatus('connecting', state.cred.token ? 'Authenticating…' : 'Signing in…');
      updateDetails();
    });
    ws.addEventListener('message', (event) => {
      if (ws !== state.ws) return;
      state.counts.in += 1;
      let message;
      try {
        message = JSON.parse(event.data);
      } catch {
        return;  // the server only sends JSON; ignore anything else
      }
      if (message && typeof message === 'object') handle(message);
      updateDetails();
    });
    ws.addEventListener('close', (event) => {
      if (ws !== state.ws) return;
      closed(event.code, event.reason);
    });
  }

  function closed(code, reason) {
    const wasOpen = state.opened;
    const wasWelcomed = state.welcomed;
    state.ws = null;
    state.opened = false;
    state.welcomed = false;
    state.connectionId = null;
    state.connectedAt = null;
    for (const room of state.rooms.values()) room.joining = false;
    clearInterval(state.roomsTimer);
    if (wasOpen) state.lastClose = describeClose(code, reason);
    updateDetails();
    if (!state.cred) return;  // signed out

    const advice = CLOSE_ADVICE[code] || '';
    if (code === 4001 || code === 4002 || (code === 1008 && !wasWelcomed && wasOpen)) {
      let text = `Connection closed: ${describeClose(code, reason)}. ${advice}`;
      if (code === 1008 && !state.cred.token) {
        text += ' This server requires a token.';
      }
      signOut(text.trim());
      return;
    }
    if (wasWelcomed) {
      toast({ title: 'Disconnected', body: `${describeClose(code, reason)}. ${advice}`.trim(),
              kind: code === 1000 || code === 1001 || code === 1012 ? 'info' : 'error' });
    }
    if (!wasOpen) probeServer();
    scheduleReconnect(wasOpen ? `Disconnected (${code} ${CLOSE_MEANINGS[code] || ''})`.trim()
                              : state.probe || 'Cannot reach the server');
  }

  // A handshake that fails shows only 1006 in a browser: ask /healthz whether the server is up,
  // to tell "unreachable" from "refused" (403 origin, 503 too many connections, 400 bad name).
  function probeServer() {
    fetch('/healthz', { cache: 'no-store' }).then((response) => {
      state.probe = response.ok ? 'The server refused the connection' : 'The server is unhealthy';
    }, () => {
      state.probe = 'Cannot reach the server';
    });
  }

  function scheduleReconnect(why) {
    state.attempt += 1;
    const ceiling = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** (state.attempt - 1));
    const delay = ceiling / 2 + Math.random() * (ceiling / 2);
    state.retryAt = Date.now() + delay;
    const tick = () => {
      const seconds = Math.max(0, Math.ceil((state.retryAt - Date.now()) / 1000));
      setStatus('reconnecting', `${state.probe && !state.opened ? state.probe : why}; ` +
                                `retrying in ${seconds} s`);
    };
    tick();
    clearInterval(state.countdownTimer);
    state.countdownTimer = setInterval(tick, 1000);
    clearTimeout(state.retryTimer);
    state.retryTimer = setTimeout(connect, delay);
  }

  // --- incoming messages ---------------------------------------------------------------------

  function handle(msg) {
    dispatch(msg);
    // Offline items come again on every sign-in until acknowledged: once shown, they are.
    if (msg.offline === true && typeof msg.message_id === 'string') {
      send({ type: 'ack', message_id: msg.message_id });
    }
  }

  function dispatch(msg) {
    switch (msg.type) {
      case 'welcome': return onWelcome(msg);
      case 'pong': return onPong(msg);
      case 'joined': return onJoined(msg);
      case 'history': return onHistory(msg);
      case 'left': return onLeft(msg);
      case 'user_joined': return onPresence(msg, true);
      case 'user_left': return onPresence(msg, false);
      case 'message': return onRoomMessage(msg);
      case 'private': return onPrivate(msg);
      case 'private_ack': return onPrivateAck(msg);
      case 'subscribed': return onSubscribed(msg);
      case 'unsubscribed': return onUnsubscribed(msg);
      case 'published': return onPublished(msg);
      case 'rooms': return onRooms(msg);
      case 'presence': return onOnline(msg);
      case 'notification': return onNotification(msg);
      case 'error': return onError(msg);
      case 'acked': return undefined;  // the answer to an ack: nothing to show
      case 'inspect': return window.rawwsInspector && window.rawwsInspector.report(msg);
      default: return undefined;
    }
  }

  function onWelcome(msg) {
    const first = !state.everWelcomed;
    if (!first) state.reconnects += 1;
    state.everWelcomed = true;
    state.welcomed = true;
    state.attempt = 0;
    state.probe = null;
    state.user = msg.user_id;
    state.connectionId = msg.connection_id;
    state.connectedAt = new Date();
    clearInterval(state.countdownTimer);
    const waiting = typeof msg.offline_items === 'number' ? msg.offline_items : 0;
    if (waiting > 0) {
      const items = `${waiting} item${waiting === 1 ? '' : 's'}`;
      toast({ title: 'While you were away', body: `${items} waited for you; marked “offline”.` });
    }

    $('me-name').textContent = msg.user_id;
    const meAvatar = $('me-avatar');
    meAvatar.className = `avatar ${hueClass(msg.user_id)}`;
    meAvatar.textContent = avatar(msg.user_id).textContent;
    $('me').hidden = false;
    $('signin-view').hidden = true;
    $('app-view').hidden = false;
    setStatus('online', first ? 'Connected' : 'Reconnected');
    updateDetails();

    if (first && state.cred.room) {
      joinRoom(state.cred.room, true);
    } else {
      // Every room in the map is one we are in or were joining: join again, with `since`.
      for (const r of state.rooms.values()) {
        r.joined = false;  // until the server confirms again
        sendJoin(r);
      }
    }
    if (state.topics.size) {
      state.confirmedTopics.clear();
      request({ type: 'subscribe', topics: [...state.topics] },
              { kind: 'subscribe', topics: [...state.topics], restore: true });
      renderTopics();
    }
    refreshDirectory();
    refreshPresence();
    clearInterval(state.roomsTimer);
    state.roomsTimer = setInterval(() => { refreshDirectory(); refreshPresence(); },
                                   ROOMS_REFRESH_MS);
  }

  function onPong(msg) {
    if (msg.id) state.pending.delete(msg.id);
  }

  // The server marks what waited in the inbox while we were signed out.
  function isOffline(msg) {
    return msg.offline === true;
  }

  // --- rooms ---------------------------------------------------------------------------------

  function room(name) {
    let r = state.rooms.get(name);
    if (!r) {
      r = newRoom(name);
      state.rooms.set(name, r);
    }
    return r;
  }

  function joinRoom(name, activate) {
    if (!ROOM_RE.test(name)) {
      toast({ title: 'Invalid room name', kind: 'error',
              body: 'Use letters, digits, _ - ~, optionally in dot-separated parts.' });
      return;
    }
    const r = room(name);
    if (activate) state.pendingActivate = name;
    if (r.joined) {
      activate && setActive('room', name);
      return;
    }
    sendJoin(r);
  }

  function sendJoin(r) {
    const message = { type: 'join', room: r.name };
    if (r.everJoined) message.since = r.lastSeq;
    if (r.everJoined && r.epoch) message.epoch = r.epoch;  // another stream: all of it is new
    r.joining = true;
    request(message, { kind: 'join', room: r.name, rejoin: r.everJoined });
    renderRooms();
  }

  function leaveRoom(name) {
    const r = state.rooms.get(name);
    if (!r || !r.joined) return;
    request({ type: 'leave', room: name }, { kind: 'leave', room: name });
  }

  function onJoined(msg) {
    const info = msg.id ? state.pending.get(msg.id) : null;
    if (msg.id) state.pending.delete(msg.id);
    const r = room(msg.room);
    const rejoin = r.everJoined;
    r.joining = false;
    r.joined = true;
    r.users = Array.isArray(msg.users) ? msg.users : [];
    r.userCount = typeof msg.user_count === 'number' ? msg.user_count : r.users.length;
    const log = ensureLog(r);
    const history = Array.isArray(msg.history) ? msg.history : [];
    const roomSeq = typeof msg.seq === 'number' ? msg.seq : 0;
    const newEpoch = typeof msg.epoch === 'string' && r.epoch !== null && msg.epoch !== r.epoch;
    if (rejoin && (newEpoch || roomSeq < r.lastSeq)) forgotten(r, log);
    if (typeof msg.epoch === 'string') r.epoch = msg.epoch;
    let added = 0;
    if (!rejoin && history.length) systemLine(log, 'Earlier messages', 'divider');
    for (const item of history) if (appendRoomMessage(r, item, true)) added += 1;
    const more = rejoin && msg.more === true;
    if (!more) r.lastSeq = Math.max(r.lastSeq, roomSeq);
    if (more) {
      // The rest of what was missed, page by page (one reply is bounded in size).
      r.recovered = added;
      request({ type: 'history', room: r.name, since: r.lastSeq, epoch: r.epoch },
              { kind: 'history', room: r.name });
    } else if (rejoin) {
      const missed = added ? `; ${added} missed message${added === 1 ? '' : 's'} recovered` : '';
      systemLine(log, `Reconnected${missed}.`);
      if (msg.complete === false) {
        systemLine(log, 'Some messages sent while you were away are no longer kept.', 'warn');
      }
    } else {
      systemLine(log, `You joined ${msg.room}.`);
    }
    r.everJoined = true;
    const activate = state.pendingActivate === msg.room || !state.active ||
                     (info && !info.rejoin && !rejoin);
    if (activate) {
      state.pendingActivate = null;
      setActive('room', msg.room);
      // Right after signing in (the form is gone, focus with it): ready to type.
      const focused = document.activeElement;
      if (!rejoin && (!focused || focused === document.body ||
                      $('signin-view').contains(focused))) {
        $('composer-input').focus();
      }
    }
    renderRooms();
    renderPeople();
    scheduleDirectory();
  }

  function forgotten(r, log) {
    // The room's history was lost (a restart of a server that keeps it in memory).
    r.seen.clear();
    r.lastSeq = 0;
    systemLine(log, 'The server forgot this room’s history (it restarted); starting afresh.');
  }

  function onHistory(msg) {
    if (msg.id) state.pending.delete(msg.id);
    const r = state.rooms.get(msg.room);
    if (!r || !r.joined) return;
    const log = ensureLog(r);
    for (const item of Array.isArray(msg.history) ? msg.history : []) {
      if (appendRoomMessage(r, item, true)) r.recovered += 1;
    }
    if (msg.more === true) {
      request({ type: 'history', room: r.name, since: r.lastSeq, epoch: r.epoch },
              { kind: 'history', room: r.name });
      return;
    }
    if (typeof msg.seq === 'number') r.lastSeq = Math.max(r.lastSeq, msg.seq);
    const n = r.recovered;
    systemLine(log, `Reconnected; ${n} missed message${n === 1 ? '' : 's'} recovered.`);
    r.recovered = 0;
  }

  function onLeft(msg) {
    const r = state.rooms.get(msg.room);
    if (msg.id) state.pending.delete(msg.id);
    if (!r) return;
    r.joined = false;
    r.everJoined = false;
    r.users = [];
    r.lastSeq = 0;
    r.epoch = null;
    r.seen.clear();
    if (r.log) r.log.remove();
    r.log = null;
    state.rooms.delete(msg.room);
    if (state.active && state.active.kind === 'room' && state.active.name === msg.room) {
      const next = [...state.rooms.values()].find((x) => x.joined);
      if (next) setActive('room', next.name);
      else if (state.dms.size) setActive('dm', [...state.dms.keys()][0]);
      else setActive(null, null);
    }
    renderRooms();
    renderPeople();
    scheduleDirectory();
  }

  function onPresence(msg, arrived) {
    if (state.dms.has(msg.user_id)) {
      // Arriving in a room means online; leaving one may not mean offline: ask.
      if (arrived) setOnline(msg.user_id, true);
      else refreshPresence([msg.user_id]);
    }
    const r = state.rooms.get(msg.room);
    if (!r || !r.joined) return;
    if (Array.isArray(msg.users)) r.users = msg.users;
    else if (arrived && !r.users.includes(msg.user_id)) r.users.push(msg.user_id);
    else if (!arrived) r.users = r.users.filter((u) => u !== msg.user_id);
    r.userCount = typeof msg.user_count === 'number' ? msg.user_count : r.users.length;
    systemLine(ensureLog(r), `${msg.user_id} ${arrived ? 'joined' : 'left'}.`, 'presence');
    renderRooms();
    renderPeople();
  }

  function onRoomMessage(msg) {
    if (msg.id) state.pending.delete(msg.id);
    const r = state.rooms.get(msg.room);
    if (!r || !r.joined) return;
    if (typeof msg.epoch === 'string' && r.epoch !== null && msg.epoch !== r.epoch) {
      forgotten(r, ensureLog(r));
      r.epoch = msg.epoch;
    }
    if (appendRoomMessage(r, msg, false)) {
      if (!isActive('room', r.name)) {
        r.unread += 1;
        renderRooms();
      }
    }
  }

  function appendRoomMessage(r, msg, fromHistory) {
    const seq = msg.seq;
    if (typeof seq === 'number') {
      if (r.seen.has(seq)) return false;
      r.seen.add(seq);
      r.lastSeq = Math.max(r.lastSeq, seq);
    }
    const log = ensureLog(r);
    appendMessage(log, {
      author: msg.user_id, content: msg.content, timestamp: msg.timestamp,
      mine: msg.user_id === state.user, history: fromHistory, seq,
    });
    return true;
  }

  // --- conversation logs ---------------------------------------------------------------------

  function ensureLog(target) {
    if (!target.log) {
      const label = target.user !== undefined ? `Conversation with ${target.user}`
                                              : `Messages in ${target.name}`;
      target.log = h('ol', { className: 'log', role: 'log', 'aria-live': 'polite',
                             'aria-label': label, tabindex: '0', hidden: true });
      $('logs').append(target.log);
    }
    return target.log;
  }

  function nearBottom(log) {
    return log.scrollHeight - log.scrollTop - log.clientHeight < 80;
  }

  function appendMessage(log, { author, content, timestamp, mine, history, seq, status, offline }) {
    const stick = log.hidden || nearBottom(log);
    const item = h('li', { className: `msg${mine ? ' mine' : ''}${history ? ' history' : ''}`,
                           dataset: { author, ...(seq !== undefined ? { seq: String(seq) } : {}) } },
      avatar(author),
      h('div', { className: 'msg-body' },
        h('div', { className: 'msg-meta' },
          h('span', { className: 'msg-author', text: mine ? `${author} (you)` : author }),
          timeNode(timestamp),
          offline ? h('span', { className: 'tag offline', text: 'offline' }) : null,
          status ? h('span', { className: 'msg-status', text: status }) : null),
        h('p', { className: 'msg-text', text: contentText(content) })));
    log.append(item);
    trim(log);
    if (stick) log.scrollTop = log.scrollHeight;
    return item;
  }

  function trim(log) {
    while (log.children.length > LOG_LIMIT) log.firstElementChild.remove();
  }

  function systemLine(log, text, kind = 'system') {
    const stick = log.hidden || nearBottom(log);
    log.append(h('li', { className: `sys sys-${kind}`, text }));
    trim(log);
    if (stick) log.scrollTop = log.scrollHeight;
  }

  function isActive(kind, name) {
    return state.active !== null && state.active.kind === kind && state.active.name === name;
  }

  function setActive(kind, name) {
    state.active = kind ? { kind, name } : null;
    for (const r of state.rooms.values()) if (r.log) r.log.hidden = !isActive('room', r.name);
    for (const t of state.dms.values()) if (t.log) t.log.hidden = !isActive('dm', t.user);
    const title = $('conv-title');
    const sub = $('conv-sub');
    if (kind === 'room') {
      const r = room(name);
      r.unread = 0;
      ensureLog(r).hidden = false;
      title.textContent = `# ${name}`;
      $('composer-label').textContent = `Message # ${name}`;
      $('composer-input').placeholder = `Message #${name}`;
      $('leave-room').hidden = false;
    } else if (kind === 'dm') {
      const t = thread(name);
      t.unread = 0;
      ensureLog(t).hidden = false;
      title.textContent = `@ ${name}`;
      sub.textContent = onlineText(name);
      $('composer-label').textContent = `Private message to ${name}`;
      $('composer-input').placeholder = `Message @${name}`;
      $('leave-room').hidden = true;
    } else {
      title.textContent = 'No room';
      sub.textContent = '';
      $('leave-room').hidden = true;
    }
    $('conv-empty').hidden = kind !== null;
    renderRooms();
    renderDms();
    renderPeople();
    updateComposer();
  }

  function updateComposer() {
    const online = $('status').dataset.state === 'online';
    const ready = online && state.active !== null &&
                  (state.active.kind === 'dm' || (state.rooms.get(state.active.name) || {}).joined);
    $('composer-input').disabled = !ready;
    $('composer-send').disabled = !ready;
    const hint = $('composer-hint');
    if (!state.active) hint.textContent = 'Join a room or pick someone to write to.';
    else if (!online) hint.textContent = 'Offline: your text stays here until the connection is back.';
    else hint.textContent = 'Enter sends, Shift+Enter adds a line.';
  }

  // --- private messages ----------------------------------------------------------------------

  function thread(user) {
    let t = state.dms.get(user);
    if (!t) {
      t = { user, log: null, unread: 0 };
      state.dms.set(user, t);
      renderDms();
      if (!state.online.has(user)) refreshPresence([user]);
    }
    return t;
  }

  function onPrivate(msg) {
    const offline = isOffline(msg);
    if (!offline) setOnline(msg.from, true);  // it was sent just now
    const t = thread(msg.from);
    appendMessage(ensureLog(t), { author: msg.from, content: msg.content,
                                  timestamp: msg.timestamp, offline });
    if (!isActive('dm', msg.from)) {
      t.unread += 1;
      renderDms();
      toast({ title: `Private message from ${msg.from}`, body: contentText(msg.content),
              badge: offline ? 'offline' : null });
    }
  }

  function sendPrivate(user, text) {
    const t = thread(user);
    const id = request({ type: 'private', target: user, content: text },
                       { kind: 'pm', user });
    if (!id) return false;
    const item = appendMessage(ensureLog(t), { author: state.user, content: text, mine: true,
                                               status: 'sending…' });
    state.pending.get(id).item = item;
    return true;
  }

  function onPrivateAck(msg) {
    const info = msg.id ? state.pending.get(msg.id) : null;
    if (!info) return;
    state.pending.delete(msg.id);
    const status = info.item && info.item.querySelector('.msg-status');
    if (status) {
      status.textContent = msg.status === 'queued'
        ? `queued: ${msg.target} is offline and gets it on sign-in` : 'delivered';
      status.dataset.status = msg.status;
    }
    // "sent" reached a connection of theirs, "queued" found none: their status right now.
    if (msg.status === 'sent' || msg.status === 'queued') {
      setOnline(msg.target, msg.status === 'sent');
    }
  }

  // --- online status of private-message partners (`presence`) --------------------------------

  const PRESENCE_MAX = 100;  // names per request (docs/chat-protocol.md)

  function refreshPresence(users) {
    const names = (users || [...state.dms.keys()]).slice(0, PRESENCE_MAX);
    if (names.length) request({ type: 'presence', users: names }, { kind: 'presence' });
  }

  function onOnline(msg) {
    if (msg.id) state.pending.delete(msg.id);
    if (!msg.online || typeof msg.online !== 'object') return;
    for (const [user, online] of Object.entries(msg.online)) setOnline(user, online === true);
  }

  function setOnline(user, online) {
    if (state.online.get(user) === online) return;
    state.online.set(user, online);
    if (state.dms.has(user)) renderDms();
    if (isActive('dm', user)) $('conv-sub').textContent = onlineText(user);
  }

  function onlineText(user) {
    if (!state.online.has(user)) return 'Private conversation';
    return state.online.get(user)
      ? 'Online now'
      : 'Offline: your messages wait in their inbox until they sign in';
  }

  // --- topics and notifications --------------------------------------------------------------

  function subscribe(pattern) {
    if (!TOPIC_RE.test(pattern)) {
      toast({ title: 'Invalid topic', kind: 'error',
              body: 'Dot-separated parts, e.g. news.* or stock.#' });
      return;
    }
    state.topics.add(pattern);
    request({ type: 'subscribe', topics: [pattern] }, { kind: 'subscribe', topics: [pattern] });
    renderTopics();
  }

  function unsubscribe(pattern) {
    state.topics.delete(pattern);
    state.confirmedTopics.delete(pattern);
    request({ type: 'unsubscribe', topics: [pattern] }, { kind: 'unsubscribe', topics: [pattern] });
    renderTopics();
  }

  function onSubscribed(msg) {
    if (msg.id) state.pending.delete(msg.id);
    for (const t of msg.topics || []) if (state.topics.has(t)) state.confirmedTopics.add(t);
    renderTopics();
  }

  function onUnsubscribed(msg) {
    if (msg.id) state.pending.delete(msg.id);
    renderTopics();
  }

  function onPublished(msg) {
    if (msg.id) state.pending.delete(msg.id);
    toast({ title: `Published to ${msg.topic}`,
            body: `${msg.recipients} subscriber${msg.recipients === 1 ? '' : 's'} reached.` });
  }

  function onNotification(msg) {
    const offline = isOffline(msg);
    const entry = { topic: typeof msg.topic === 'string' ? msg.topic : null,
                    message: msg.message, timestamp: msg.timestamp, offline };
    state.notifications.unshift(entry);
    if (state.notifications.length > 200) state.notifications.pop();
    state.unreadNotifications += 1;
    const list = $('notif-list');
    list.prepend(notificationItem(entry));
    while (list.children.length > 200) list.lastElementChild.remove();
    renderNotificationMeta();
    toast({ title: entry.topic ? `Notification · ${entry.topic}` : 'Notification',
            body: contentText(msg.message), kind: 'notify', badge: offline ? 'offline' : null });
  }

  function notificationItem(entry) {
    return h('li', { className: `notif${entry.offline ? ' is-offline' : ''}`,
                     dataset: { topic: entry.topic || '' } },
      h('div', { className: 'notif-meta' },
        h('span', { className: entry.topic ? 'tag topic' : 'tag personal',
                    text: entry.topic || 'for you' }),
        entry.offline ? h('span', { className: 'tag offline', text: 'offline',
                                    title: 'Waited in your inbox while you were signed out' })
                      : null,
        timeNode(entry.timestamp)),
      h('p', { className: 'notif-text', text: contentText(entry.message) }));
  }

  // "(3) rawws chat" while something is unread, so a background tab shows it.
  function updateTitle() {
    let unread = state.unreadNotifications;
    for (const r of state.rooms.values()) unread += r.unread;
    for (const t of state.dms.values()) unread += t.unread;
    document.title = unread ? `(${unread}) rawws chat` : 'rawws chat';
  }

  function renderNotificationMeta() {
    const count = $('notif-count');
    count.hidden = state.unreadNotifications === 0;
    count.textContent = String(state.unreadNotifications);
    count.setAttribute('aria-label', `${state.unreadNotifications} new`);
    $('notif-empty').hidden = state.notifications.length > 0;
    $('notif-clear').hidden = state.notifications.length === 0;
    updateTitle();
  }

  // --- errors --------------------------------------------------------------------------------

  function onError(msg) {
    const info = msg.id ? state.pending.get(msg.id) : null;
    if (msg.id) state.pending.delete(msg.id);
    if (msg.id === 'auth' && /already authenticated/.test(msg.message || '')) {
      return;  // the server runs without auth: the token was not needed
    }
    if (info && info.kind === 'join') {
      const r = state.rooms.get(info.room);
      if (r && !r.everJoined) state.rooms.delete(info.room);
      else if (r) r.joining = false;
      renderRooms();
    } else if (info && info.kind === 'subscribe' && !info.restore) {
      for (const t of info.topics) {
        state.topics.delete(t);
        state.confirmedTopics.delete(t);
      }
      renderTopics();
    } else if (info && info.kind === 'pm' && info.item) {
      const status = info.item.querySelector('.msg-status');
      if (status) {
        status.textContent = `not sent: ${msg.code}`;
        status.dataset.status = 'failed';
      }
    }
    const code = typeof msg.code === 'string' ? msg.code : 'error';
    const title = `${ERROR_TITLES[code] || 'Error'} (${code})`;
    toast({ title, body: msg.message || '', kind: 'error' });
    const target = state.active && (state.active.kind === 'room'
      ? state.rooms.get(state.active.name) : state.dms.get(state.active.name));
    if (target && target.log) systemLine(target.log, `${title}: ${msg.message || ''}`, 'error');
  }

  // --- room directory (the `rooms` request) -------------------------------------------------
  // Over the WebSocket rather than GET /api/rooms: it needs no API key, and a token's `rooms`
  // claim limits it to the rooms that token may join.

  function scheduleDirectory() {
    clearTimeout(state.roomsDebounce);
    state.roomsDebounce = setTimeout(refreshDirectory, 300);
  }

  function refreshDirectory() {
    request({ type: 'rooms' }, { kind: 'rooms' });  // offline: keeps the last list
  }

  function onRooms(msg) {
    if (msg.id) state.pending.delete(msg.id);
    if (!Array.isArray(msg.rooms)) return;
    state.directory = new Map(msg.rooms
      .filter((r) => r && typeof r.room === 'string')
      .map((r) => [r.room, typeof r.user_count === 'number' ? r.user_count : 0]));
    const note = $('room-dir-note');
    note.hidden = msg.truncated !== true;
    note.textContent = msg.truncated === true
      ? `Showing the first ${msg.rooms.length} rooms by name; join others by name below.` : '';
    renderRooms();
  }

  // --- rendering -----------------------------------------------------------------------------

  function renderRooms() {
    const list = $('room-list');
    const names = new Set(state.directory.keys());
    for (const r of state.rooms.values()) names.add(r.name);
    const sorted = [...names].sort((a, b) => a.localeCompare(b));
    list.replaceChildren(...sorted.map((name) => {
      const r = state.rooms.get(name);
      const joined = Boolean(r && r.joined);
      const count = joined ? r.userCount : (state.directory.get(name) ?? 0);
      const active = isActive('room', name);
      const label = `${name}, ${count} ${count === 1 ? 'member' : 'members'}` +
                    (r && r.unread ? `, ${r.unread} unread` : '');
      return h('li', { className: `room-item${active ? ' active' : ''}${joined ? ' joined' : ''}`,
                       dataset: { room: name } },
        h('button', { type: 'button', className: 'room-open', 'aria-label': label,
                      'aria-current': active ? 'true' : undefined,
                      onclick: () => (joined ? setActive('room', name) : joinRoom(name, true)) },
          h('span', { className: 'room-name', text: `# ${name}` }),
          r && r.unread ? h('span', { className: 'badge', text: String(r.unread) }) : null,
          h('span', { className: 'count', text: String(count), title: 'members' })),
        joined
          ? h('button', { type: 'button', className: 'ghost small',
                          'aria-label': `Leave ${name}`, text: 'Leave',
                          onclick: () => leaveRoom(name) })
          : h('button', { type: 'button', className: 'small', 'aria-label': `Join ${name}`,
                          text: r && r.joining ? 'Joining…' : 'Join',
                          disabled: Boolean(r && r.joining), onclick: () => joinRoom(name, true) }));
    }));
    if (!sorted.length) list.append(h('li', { className: 'hint', text: 'No rooms yet.' }));
    updateTitle();
  }

  function renderDms() {
    const list = $('dm-list');
    list.replaceChildren(...[...state.dms.values()].map((t) => {
      const active = isActive('dm', t.user);
      const known = state.online.has(t.user);
      const online = state.online.get(t.user) === true;
      const presence = known ? (online ? 'online' : 'offline') : null;
      return h('li', { className: `room-item${active ? ' active' : ''}`,
                       dataset: { user: t.user, ...(known ? { online: String(online) } : {}) } },
        h('button', { type: 'button', className: 'room-open',
                      'aria-current': active ? 'true' : undefined,
                      'aria-label': `Conversation with ${t.user}` +
                                    (presence ? `, ${presence}` : '') +
                                    (t.unread ? `, ${t.unread} unread` : ''),
                      onclick: () => setActive('dm', t.user) },
          avatar(t.user),
          h('span', { className: 'room-name', text: t.user }),
          presence ? h('span', { className: `presence-dot ${presence}`, title: presence,
                                 'aria-hidden': 'true' }) : null,
          t.unread ? h('span', { className: 'badge', text: String(t.unread) }) : null));
    }));
    $('dm-empty').hidden = state.dms.size > 0;
    updateTitle();
  }

  function renderPeople() {
    const list = $('people-list');
    const active = state.active;
    let users = [];
    if (active && active.kind === 'room') {
      const r = state.rooms.get(active.name);
      users = r && r.joined ? r.users : [];
      $('people-room').textContent = `in ${active.name}` +
        (r && r.userCount > users.length ? ` (${users.length} of ${r.userCount})` : '');
      $('conv-sub').textContent = r && r.joined
        ? `${r.userCount} ${r.userCount === 1 ? 'member' : 'members'}` : 'Joining…';
    } else if (active && active.kind === 'dm') {
      users = [active.name];
      $('people-room').textContent = '';
    } else {
      $('people-room').textContent = '';
    }
    const wanted = [...users].sort((a, b) => a.localeCompare(b));
    // Update in place so aria-live announces only arrivals and departures.
    const existing = new Map([...list.children].map((li) => [li.dataset.user, li]));
    for (const [name, li] of existing) if (!wanted.includes(name)) li.remove();
    let previous = null;
    for (const name of wanted) {
      let li = existing.get(name);
      if (!li || !li.isConnected) {
        li = h('li', { className: 'person', dataset: { user: name } },
          avatar(name),
          h('span', { className: 'person-name', text: name === state.user ? `${name} (you)` : name }),
          name === state.user ? null
            : h('button', { type: 'button', className: 'ghost small',
                            'aria-label': `Message ${name}`, text: 'Message',
                            onclick: () => { setActive('dm', name); $('composer-input').focus(); } }));
      }
      if (previous) previous.after(li);
      else list.prepend(li);
      previous = li;
    }
    $('people-empty').hidden = wanted.length > 0;
  }

  function renderTopics() {
    const list = $('topic-list');
    list.replaceChildren(...[...state.topics].map((pattern) => {
      const confirmed = state.confirmedTopics.has(pattern);
      return h('li', { className: `chip${confirmed ? '' : ' pending'}`, dataset: { topic: pattern } },
        h('code', { text: pattern }),
        confirmed ? null : h('span', { className: 'visually-hidden', text: '(pending)' }),
        h('button', { type: 'button', className: 'chip-remove', 'aria-label': `Unfollow ${pattern}`,
                      text: '×', onclick: () => unsubscribe(pattern) }));
    }));
  }

  // --- sign-in and sign-out ------------------------------------------------------------------

  function signIn(event) {
    event.preventDefault();
    const name = $('signin-name').value.trim();
    const token = $('signin-token').value.trim();
    const roomName = $('signin-room').value.trim();
    const error = $('signin-error');
    error.hidden = true;
    if (name && !USER_RE.test(name)) {
      showSignInError('The name may use letters, digits and _ - . ~ @ (at most 64).');
      $('signin-name').focus();
      return;
    }
    if (roomName && !ROOM_RE.test(roomName)) {
      showSignInError('The room name may use letters, digits, _ - ~ and dots between parts.');
      $('signin-room').focus();
      return;
    }
    try { localStorage.setItem('rawws.name', name); } catch { /* storage disabled */ }
    state.cred = { name, token, room: roomName };
    state.everWelcomed = false;
    state.reconnects = 0;
    state.attempt = 0;
    state.lastClose = null;
    connect();
  }

  function showSignInError(text) {
    const error = $('signin-error');
    error.textContent = text;
    error.hidden = false;
  }

  function signOut(errorText) {
    const ws = state.ws;
    state.cred = null;
    state.ws = null;
    clearTimeout(state.retryTimer);
    clearInterval(state.countdownTimer);
    clearInterval(state.roomsTimer);
    if (ws && ws.readyState <= WebSocket.OPEN) ws.close(1000, 'signed out');
    for (const r of state.rooms.values()) if (r.log) r.log.remove();
    for (const t of state.dms.values()) if (t.log) t.log.remove();
    state.rooms.clear();
    state.dms.clear();
    state.topics.clear();
    state.confirmedTopics.clear();
    state.notifications = [];
    state.unreadNotifications = 0;
    state.pending.clear();
    state.active = null;
    state.user = null;
    state.connectionId = null;
    state.directory = new Map();
    state.online.clear();
    $('room-dir-note').hidden = true;
    $('notif-list').replaceChildren();
    renderNotificationMeta();
    renderTopics();
    setActive(null, null);
    $('me').hidden = true;
    $('app-view').hidden = true;
    $('signin-view').hidden = false;
    setStatus(errorText ? 'offline' : 'idle', errorText ? 'Signed out' : 'Not signed in');
    updateDetails();
    if (errorText) showSignInError(errorText);
    $('signin-name').focus();
  }

  // --- wiring --------------------------------------------------------------------------------

  function onComposerSubmit(event) {
    event.preventDefault();
    const input = $('composer-input');
    const text = input.value;
    if (!text.trim() || !state.active) return;
    let ok = false;
    if (state.active.kind === 'room') {
      ok = Boolean(request({ type: 'message', room: state.active.name, content: text },
                           { kind: 'msg', room: state.active.name }));
    } else {
      ok = sendPrivate(state.active.name, text);
    }
    if (ok) input.value = '';
    input.focus();
  }

  function init() {
    try { $('signin-name').value = localStorage.getItem('rawws.name') || ''; } catch { /* */ }
    $('signin-form').addEventListener('submit', signIn);
    $('sign-out').addEventListener('click', () => signOut(null));
    $('retry-now').addEventListener('click', () => { state.attempt = Math.max(0, state.attempt - 1); connect(); });
    $('composer').addEventListener('submit', onComposerSubmit);
    $('composer-input').addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        $('composer').requestSubmit();
      }
    });
    $('join-form').addEventListener('submit', (event) => {
      event.preventDefault();
      const input = $('join-room');
      const name = input.value.trim();
      if (!name) return;
      joinRoom(name, true);
      input.value = '';
    });
    $('leave-room').addEventListener('click', () => {
      if (state.active && state.active.kind === 'room') leaveRoom(state.active.name);
    });
    $('subscribe-form').addEventListener('submit', (event) => {
      event.preventDefault();
      const input = $('subscribe-topic');
      const pattern = input.value.trim();
      if (!pattern) return;
      subscribe(pattern);
      input.value = '';
    });
    $('publish-form').addEventListener('submit', (event) => {
      event.preventDefault();
      const topic = $('publish-topic').value.trim();
      const text = $('publish-message').value;
      if (!topic || !text) return;
      request({ type: 'publish', topic, message: text }, { kind: 'publish', topic });
      $('publish-message').value = '';
    });
    $('notif-clear').addEventListener('click', () => {
      state.notifications = [];
      state.unreadNotifications = 0;
      $('notif-list').replaceChildren();
      renderNotificationMeta();
    });
    $('notif-list').addEventListener('mouseenter', markNotificationsRead);
    $('notif-list').addEventListener('focusin', markNotificationsRead);
    window.addEventListener('online', () => {
      if (state.cred && !state.ws) connect();
    });
    renderNotificationMeta();
    renderRooms();
    updateDetails();
    const params = new URLSearchParams(location.search);
    if (params.get('user')) $('signin-name').value = params.get('user');
    if (params.get('room')) $('signin-room').value = params.get('room');
    $('signin-name').focus();
  }

  function markNotificationsRead() {
    state.unreadNotifications = 0;
    renderNotificationMeta();
  }

  // Exposed for the browser tests and the curious: read-only views, no way to send.
  window.rawwsChat = Object.freeze({
    get user() { return state.user; },
    get extensions() { return state.ws ? state.ws.extensions : null; },
    get readyState() { return state.ws ? state.ws.readyState : WebSocket.CLOSED; },
    get reconnects() { return state.reconnects; },
    lastSeq(name) { const r = state.rooms.get(name); return r ? r.lastSeq : null; },
    // The Frames panel (inspect.js) reconnects to start or stop the inspector.
    reconnect() {
      const old = state.ws;
      if (!old || !state.cred) return;
      state.ws = null;
      old.close(1000, 'reconnecting');
      connect();
    },
  });

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
