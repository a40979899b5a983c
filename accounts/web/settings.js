// weave's account page, behind Firefox's "Manage account" link: the
// account's devices and sessions (disconnect one, sign out everywhere),
// password change and account deletion. In Firefox it uses the browser's
// own session (fxaccounts:fxa_status on the account_updates WebChannel) and
// tells Firefox about a new password or a deleted account, as FxA's
// settings do; elsewhere it signs in with the password. The password never
// leaves the page: it is stretched here (web/onepw.js).
'use strict';
(function () {
  const P = window.WeaveOnepw;
  const body = document.body;
  const $ = id => document.getElementById(id);
  const q = new URLSearchParams(location.search);

  const { ApiError, api } = window.WeaveApi;

  const explain = e => window.WeaveApi.explain(e, {
    110: 'You have been signed out. Reload the page to sign in again.',
  });

  // ---- the account_updates WebChannel (Firefox) ---------------------------

  const channel = {
    pending: new Map(),
    seq: 0,
    request(command, data, ms) {
      return new Promise(resolve => {
        const messageId = 'settings' + Date.now() + '-' + (++this.seq);
        const timer = setTimeout(() => {
          this.pending.delete(messageId);
          resolve(null);
        }, ms);
        this.pending.set(messageId, { resolve, timer });
        const detail = JSON.stringify({ id: 'account_updates', message: { command, data, messageId } });
        window.dispatchEvent(new CustomEvent('WebChannelMessageToChrome', { detail }));
      });
    },
    receive(e) {
      let d = e.detail;
      try {
        if (typeof d === 'string') d = JSON.parse(d);
      } catch (err) {
        return;
      }
      if (!d || d.id !== 'account_updates' || !d.message) return;
      const p = this.pending.get(d.message.messageId);
      if (!p) return;
      this.pending.delete(d.message.messageId);
      clearTimeout(p.timer);
      p.resolve(d.message.error ? null : d.message.data || {});
    },
  };
  window.addEventListener('WebChannelMessageToContent', e => channel.receive(e));

  // ---- state ----------------------------------------------------------------

  const me = { email: '', uid: '', token: '', firefox: false };
  const bearer = () => 'fxs_' + me.token;

  function setStep(s) { body.dataset.step = s; }
  function error(msg) { $('s-error').textContent = msg || ''; }
  function status(msg) { $('s-status').textContent = msg || ''; }
  function finished(title, msg) {
    $('s-account').hidden = true;
    $('s-signin').hidden = true;
    $('title').textContent = title;
    status('');
    error('');
    const info = $('info');
    info.hidden = false;
    info.textContent = msg;
  }

  // run guards a user action: one at a time, errors shown.
  let running = false;
  async function run(fn) {
    if (running) return;
    running = true;
    error('');
    const was = body.dataset.step;
    setStep('working');
    try {
      await fn();
    } catch (e) {
      error(explain(e));
      status('');
    } finally {
      running = false;
      if (body.dataset.step === 'working') setStep(was);
    }
  }

  // ---- devices and sessions ------------------------------------------------

  function ago(ms) {
    if (!ms) return '';
    const s = Math.max(0, (Date.now() - ms) / 1000);
    if (s < 90) return 'active now';
    if (s < 5400) return 'active ' + Math.round(s / 60) + ' minutes ago';
    if (s < 129600) return 'active ' + Math.round(s / 3600) + ' hours ago';
    return 'active ' + Math.round(s / 86400) + ' days ago';
  }

  async function loadClients() {
    const list = await api('GET', '/account/attached_clients', undefined, bearer());
    const ul = $('clients');
    ul.textContent = '';
    for (const c of list) {
      const li = document.createElement('li');
      li.dataset.device = c.deviceId || '';
      li.dataset.session = c.sessionTokenId || '';
      li.dataset.refresh = c.refreshTokenId || '';
      if (c.isCurrentSession) li.dataset.current = 'true';
      const text = document.createElement('span');
      const name = document.createElement('strong');
      name.textContent = c.name || (c.sessionTokenId ? 'Web session' : 'Application');
      const meta = document.createElement('span');
      meta.className = 'meta';
      meta.textContent = [c.isCurrentSession ? 'this page' : '', c.deviceType || '', ago(c.lastAccessTime)]
        .filter(Boolean).join(' · ');
      text.append(name, meta);
      const btn = document.createElement('button');
      btn.type = 'button';
      btn.className = 'secondary';
      btn.textContent = 'Disconnect';
      btn.addEventListener('click', () => run(async () => {
        await disconnect(c);
        if (c.isCurrentSession) {
          await signedOutHere();
          return;
        }
        await loadClients();
        status('Disconnected ' + (c.name || 'the session') + '.');
      }));
      li.append(text, btn);
      ul.append(li);
    }
    return list;
  }

  function disconnect(c) {
    const req = {};
    if (c.clientId) req.clientId = c.clientId;
    if (c.deviceId) req.deviceId = c.deviceId;
    else if (c.sessionTokenId) req.sessionTokenId = c.sessionTokenId;
    else if (c.refreshTokenId) req.refreshTokenId = c.refreshTokenId;
    return api('POST', '/account/attached_client/destroy', req, bearer());
  }

  async function signedOutHere() {
    if (me.firefox) await channel.request('fxaccounts:logout', { uid: me.uid }, 5000);
    finished('Signed out', 'This browser is signed out of ' + me.email + '.');
    setStep('signed-out');
  }

  async function signOutEverywhere() {
    const list = await api('GET', '/account/attached_clients', undefined, bearer());
    // Everything else first: the page's own session signs the calls.
    for (const c of list.filter(c => !c.isCurrentSession)) await disconnect(c);
    for (const c of list.filter(c => c.isCurrentSession)) await disconnect(c);
    if (me.firefox) await channel.request('fxaccounts:logout', { uid: me.uid }, 5000);
    finished('Signed out everywhere', 'Every device and session of ' + me.email + ' is signed out.');
    setStep('signed-out');
  }

  // ---- password change ------------------------------------------------------

  async function changePassword() {
    const old = $('pw-old').value;
    const pw = $('pw-new').value;
    if (!old) throw new Error('Enter your current password.');
    if (pw.length < 8) throw new Error('Use at least 8 characters for the new password.');
    if (pw !== $('pw-repeat').value) throw new Error('The new passwords do not match.');
    if (pw === old) throw new Error('The new password is the same as the current one.');
    status('Checking your password…');
    const oldCreds = await P.stretch(me.email, old);
    const start = await api('POST', '/password/change/start', { email: me.email, oldAuthPW: P.hex(oldCreds.authPW) });
    const keys = await api('GET', '/account/keys', undefined, 'fxk_' + start.keyFetchToken);
    const { kB } = await P.unwrapKeys(P.unhex(start.keyFetchToken), P.unhex(keys.bundle), oldCreds.unwrapBKey);
    status('Changing your password…');
    const creds = await P.stretch(me.email, pw);
    // kB stays: only its wrapping changes, so nothing synced is lost.
    const wrapKb = P.xor(kB, creds.unwrapBKey);
    const sessionId = P.hex((await P.deriveToken(P.unhex(me.token), 'sessionToken')).id);
    const out = await api('POST', '/password/change/finish',
      { authPW: P.hex(creds.authPW), wrapKb: P.hex(wrapKb), sessionToken: sessionId },
      'fxpc_' + start.passwordChangeToken);
    me.token = out.sessionToken;
    if (me.firefox) {
      // Firefox keeps syncing with the new session; the other devices
      // hear of the change and ask for the new password.
      await channel.request('fxaccounts:change_password',
        { email: me.email, uid: me.uid, sessionToken: out.sessionToken, verified: true }, 10000);
    }
    for (const id of ['pw-old', 'pw-new', 'pw-repeat']) $(id).value = '';
    await loadClients();
    status('Your password is changed. Your other devices ask for it when they next connect.');
    setStep('password-changed');
  }

  // ---- deletion -------------------------------------------------------------

  async function deleteAccount() {
    const pw = $('del-password').value;
    if (!pw) throw new Error('Enter your password.');
    if (!$('del-confirm').checked) throw new Error('Confirm that you want to delete the account.');
    status('Deleting your account…');
    const creds = await P.stretch(me.email, pw);
    await api('POST', '/account/destroy', { email: me.email, authPW: P.hex(creds.authPW) });
    if (me.firefox) await channel.request('fxaccounts:delete', { uid: me.uid }, 5000);
    finished('Account deleted', 'The account ' + me.email + ' and its synced data are deleted from this server.');
    setStep('deleted');
  }

  // ---- start ------------------------------------------------------------------

  async function show() {
    $('s-signin').hidden = true;
    $('s-account').hidden = false;
    $('title').textContent = 'Your account';
    $('s-who').textContent = me.email;
    await loadClients();
    setStep('settings');
  }

  async function signIn() {
    const email = $('s-email').value.trim();
    const pw = $('s-password').value;
    if (!email || !pw) throw new Error('Enter your email and password.');
    status('Signing in…');
    const creds = await P.stretch(email, pw);
    const s = await api('POST', '/account/login', { email, authPW: P.hex(creds.authPW) });
    $('s-password').value = '';
    Object.assign(me, { email, uid: s.uid, token: s.sessionToken, firefox: false });
    status('');
    await show();
  }

  async function start() {
    $('form').hidden = true;
    $('subtitle').textContent = 'Firefox Sync on ' + body.dataset.base;
    $('s-signin').addEventListener('submit', e => { e.preventDefault(); run(signIn); });
    $('pw-form').addEventListener('submit', e => { e.preventDefault(); run(changePassword); });
    $('del-form').addEventListener('submit', e => { e.preventDefault(); run(deleteAccount); });
    $('signout-all').addEventListener('click', () => run(signOutEverywhere));
    // Firefox answers fxa_status with its signed-in user, session included,
    // only to the origin its account channel is configured for: this one.
    const st = await channel.request('fxaccounts:fxa_status', { service: 'sync', context: q.get('context') || 'fx_desktop_v3' }, 1500);
    const u = st && st.signedInUser;
    if (u && u.sessionToken && u.email && (!q.get('uid') || q.get('uid') === u.uid)) {
      Object.assign(me, { email: u.email, uid: u.uid, token: u.sessionToken, firefox: true });
      try {
        await show();
        return;
      } catch (e) {
        if (!(e instanceof ApiError) || e.status !== 401) {
          error(explain(e));
          return;
        }
        // Firefox's session is gone (say, the password was changed
        // elsewhere): sign in here instead.
        me.firefox = false;
        $('s-account').hidden = true;
      }
    }
    $('title').textContent = 'Sign in to manage your account';
    $('s-signin').hidden = false;
    $('s-email').value = (u && u.email) || q.get('email') || '';
    setStep('settings-signin');
    ($('s-email').value ? $('s-password') : $('s-email')).focus();
  }

  start();
})();
