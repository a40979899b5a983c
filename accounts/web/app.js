// weave's sign-in and sign-up page. With Firefox (a `context` query
// parameter, as FxAccountsConfig puts in the URL it opens) it speaks the
// account_updates WebChannel the way FxA's pages do; without, it is a
// plain page to create an account and check a password.
'use strict';
(function () {
  const P = window.WeaveOnepw;
  const body = document.body;
  const $ = id => document.getElementById(id);
  const signupMode = body.dataset.signup; // open | closed | captcha
  const base = body.dataset.base;
  const q = new URLSearchParams(location.search);
  const context = q.get('context') || '';
  const firefox = context !== '';
  const FIREFOX_DESKTOP = '5882386c6d801776';

  // ---- small helpers ------------------------------------------------------

  const { ApiError, api } = window.WeaveApi;

  // Bearer credentials of a token (FxA's typed prefixes, ADR-0050). weave
  // takes the token itself here, never its Hawk id: the id is sent in
  // clear with every Hawk request, the token never is.
  async function bearer(tokenHex, name) {
    const prefixes = { sessionToken: 'fxs_', keyFetchToken: 'fxk_' };
    return prefixes[name] + tokenHex.toLowerCase();
  }

  function setStep(step) {
    body.dataset.step = step;
  }
  function showError(msg) {
    $('error').textContent = msg || '';
  }
  function setStatus(msg) {
    $('status').textContent = msg || '';
  }
  function busy(on) {
    $('submit').disabled = on;
  }
  function fail(msg) {
    $('form').hidden = true;
    setStatus('');
    showError('');
    const info = $('info');
    info.hidden = false;
    info.textContent = msg;
    info.setAttribute('role', 'alert');
    setStep('error');
  }

  // The errnos of signing up, besides those every page explains.
  const signupErrors = {
    101: 'An account with this email already exists.',
    125: e => e.body.verificationMethod === 'captcha'
      ? 'Please type the characters in the picture.'
      : 'New accounts cannot be created here. Ask the operator of this server for an account.',
    127: 'The characters did not match the picture (or it expired). Try the new one.',
  };
  const explain = e => window.WeaveApi.explain(e, signupErrors);

  // ---- the account_updates WebChannel ------------------------------------

  const notConnected = 'Firefox is not connected to this server yet. In Firefox, open about:config and set ' +
    'identity.fxaccounts.autoconfig.uri to ' + base + ' (and identity.fxaccounts.allowHttp to true if it is not https), ' +
    'then open Settings → Sync and click “Sign in”: Firefox opens this page itself.';

  const channel = {
    id: 'account_updates',
    pending: new Map(), // messageId -> {resolve, reject, timer}
    seq: 0,
    send(command, data) {
      const messageId = String(Date.now()) + String(++this.seq);
      // Firefox desktop takes the detail only as a JSON string.
      const detail = JSON.stringify({ id: this.id, message: { command, data, messageId } });
      window.dispatchEvent(new CustomEvent('WebChannelMessageToChrome', { detail }));
      return messageId;
    },
    // request sends and waits for the reply with the same messageId;
    // resolves null when Firefox does not answer within ms.
    request(command, data, ms) {
      return new Promise((resolve, reject) => {
        const messageId = this.send(command, data);
        const timer = setTimeout(() => {
          this.pending.delete(messageId);
          resolve(null);
        }, ms);
        this.pending.set(messageId, { resolve, reject, timer });
      });
    },
    receive(e) {
      let d = e.detail;
      try {
        if (typeof d === 'string') d = JSON.parse(d);
      } catch (err) {
        return;
      }
      if (!d || d.id !== this.id || !d.message) return;
      const m = d.message;
      const settle = (p, fn, v) => {
        clearTimeout(p.timer);
        fn(v);
      };
      if (m.messageId === undefined && (m.error || m.errno)) {
        // WebChannelParent's "No Such Channel": this page's origin is not
        // the one Firefox's account channel listens to.
        for (const [id, p] of this.pending) {
          this.pending.delete(id);
          const err = new Error(notConnected);
          err.noChannel = true;
          settle(p, p.reject, err);
        }
        return;
      }
      const p = this.pending.get(m.messageId);
      if (!p) return;
      this.pending.delete(m.messageId);
      if (m.error || (m.data && m.data.error)) {
        const err = m.error || m.data.error;
        settle(p, p.reject, new Error('Firefox reported an error: ' + (err.message || err)));
      } else {
        settle(p, p.resolve, m.data || {});
      }
    },
  };
  window.addEventListener('WebChannelMessageToContent', e => channel.receive(e));

  // ---- the OAuth request in the URL ---------------------------------------

  let oauth = null; // {clientId, scope, state, challenge, method, accessType, peer}
  async function readOAuth() {
    const clientId = q.get('client_id');
    if (!clientId) return null;
    const o = {
      clientId,
      scope: q.get('scope') || '',
      state: q.get('state') || '',
      challenge: q.get('code_challenge') || '',
      method: q.get('code_challenge_method') || '',
      accessType: q.get('access_type') || 'online',
      redirectUri: q.get('redirect_uri') || '',
      peer: null,
    };
    const bad = [];
    if (!/^[0-9a-f]{16}$/.test(clientId)) bad.push('client_id');
    if (!o.scope.trim() || o.scope.length > 1024) bad.push('scope');
    if (!o.state || o.state.length > 512) bad.push('state');
    if (!/^[A-Za-z0-9_-]{43}$/.test(o.challenge) || o.method !== 'S256') bad.push('code_challenge');
    if (o.accessType !== 'online' && o.accessType !== 'offline') bad.push('access_type');
    const jwk = q.get('keys_jwk');
    if (jwk) {
      try {
        o.peer = await P.parseJWK(jwk);
      } catch (e) {
        bad.push('keys_jwk');
      }
    }
    if (bad.length) {
      throw new Error('This sign-in link is damaged or incomplete (' + bad.join(', ') +
        '). Start signing in again from Firefox.');
    }
    return o;
  }

  // ---- steps ---------------------------------------------------------------

  // engines Firefox offers to sync (fxa_status capabilities): a new
  // account chooses among them, as on FxA's sign-up page.
  let engines = [];
  const engineNames = {
    addons: 'Add-ons', bookmarks: 'Bookmarks', history: 'History', passwords: 'Passwords',
    prefs: 'Settings', tabs: 'Open tabs', addresses: 'Addresses', creditcards: 'Payment methods',
  };
  function offerEngines(list) {
    engines = (Array.isArray(list) ? list : []).filter(e => typeof e === 'string' && /^[a-z]+$/.test(e));
    const box = $('engine-list');
    box.textContent = '';
    for (const e of engines) {
      const label = document.createElement('label');
      const cb = document.createElement('input');
      cb.type = 'checkbox';
      cb.id = 'engine-' + e;
      cb.value = e;
      cb.checked = true;
      label.append(cb, engineNames[e] || e);
      box.append(label);
    }
  }
  function syncService(action) {
    if (action !== 'signup' || engines.length === 0) return {};
    return {
      offeredEngines: engines.slice(),
      declinedEngines: engines.filter(e => !$('engine-' + e).checked),
    };
  }

  let step = 'email';
  let email = '';
  let captchaId = '';

  function show(next) {
    step = next;
    const signin = next === 'signin';
    const signup = next === 'signup';
    $('form').hidden = false;
    $('email').readOnly = signin || signup;
    $('change-email-row').hidden = !(signin || signup);
    $('password-field').hidden = !(signin || signup);
    $('password').autocomplete = signup ? 'new-password' : 'current-password';
    $('password-confirm-field').hidden = !signup;
    $('captcha-field').hidden = !(signup && signupMode === 'captcha');
    $('engines').hidden = !(signup && engines.length > 0);
    $('title').textContent = signin ? 'Sign in' : signup ? 'Create an account' : 'Enter your email';
    $('submit').textContent = signin ? 'Sign in' : signup ? 'Create account' : 'Continue';
    if (signup && signupMode === 'captcha') loadCaptcha();
    setStep(next);
    (signin || signup ? $('password') : $('email')).focus();
  }

  // loadCaptcha shows a new captcha; submitting waits for it (captchaReady).
  let captchaReady = Promise.resolve();
  function loadCaptcha() {
    captchaId = '';
    $('captcha-answer').value = '';
    const img = $('captcha-image');
    delete img.dataset.captchaId;
    captchaReady = api('POST', '/captcha', {}).then(c => {
      captchaId = c.id;
      img.src = c.image;
      img.dataset.captchaId = c.id; // lets automation tell pictures apart
    }, e => showError(explain(e)));
    return captchaReady;
  }

  async function submitEmail() {
    const v = $('email').value.trim();
    if (!/^[^@\s]+@[^@\s]+$/.test(v)) {
      showError('Enter a valid email address.');
      return;
    }
    email = v;
    const st = await api('POST', '/account/status', { email });
    if (st.exists) {
      show('signin');
    } else if (signupMode === 'closed') {
      showError('There is no account with this email, and new accounts are created by the operator of this server.');
    } else {
      show('signup');
    }
  }

  async function submitSignin() {
    const pw = $('password').value;
    if (!pw) {
      showError('Enter your password.');
      return;
    }
    setStatus('Checking your password…');
    let creds = await P.stretch(email, pw);
    let s;
    try {
      s = await api('POST', '/account/login?keys=true', { email, authPW: P.hex(creds.authPW) });
    } catch (e) {
      // The account's email differs in case: it salts the stretch, so
      // sign in again with the stored spelling (FxA's errno 120).
      if (e.errno !== 120 || !e.body.email || e.body.email === email) throw e;
      email = e.body.email;
      $('email').value = email;
      creds = await P.stretch(email, pw);
      s = await api('POST', '/account/login?keys=true', { email, authPW: P.hex(creds.authPW) });
    }
    await finish(s, creds, 'signin');
  }

  async function submitSignup() {
    const pw = $('password').value;
    if (pw.length < 8) {
      showError('Use at least 8 characters for the password.');
      return;
    }
    if (pw !== $('password-confirm').value) {
      showError('The passwords do not match.');
      return;
    }
    const req = {};
    if (signupMode === 'captcha') {
      await captchaReady;
      req.captchaId = captchaId;
      req.captchaAnswer = $('captcha-answer').value.trim();
      if (!req.captchaAnswer) {
        showError('Type the characters in the picture.');
        return;
      }
    }
    setStatus('Creating your account…');
    const creds = await P.stretch(email, pw);
    req.email = email;
    req.authPW = P.hex(creds.authPW);
    let s;
    try {
      s = await api('POST', '/account/create?keys=true', req);
    } catch (e) {
      if (signupMode === 'captcha') loadCaptcha(); // every answer spends it
      if (e.errno === 101) show('signin');
      throw e;
    }
    await finish(s, creds, 'signup');
  }

  // finish hands the new session to Firefox (or to the relier), or, on the
  // plain page, shows what to do next. Everything that can fail on the
  // server (keys, authorization code) happens before Firefox hears of the
  // session, and a session that never reaches Firefox is signed out again.
  async function finish(s, creds, action) {
    const session = await bearer(s.sessionToken, 'sessionToken');
    const drop = () => api('POST', '/session/destroy', {}, session).catch(() => {});
    if (!firefox && !oauth) {
      await drop();
      done(action === 'signup' ? 'Your account ' + email + ' is ready.' : 'Your password for ' + email + ' is correct.', true);
      return;
    }
    let code = null;
    try {
      if (firefox) {
        setStatus('Asking Firefox…');
        const link = await channel.request('fxaccounts:can_link_account', { email, uid: s.uid }, 10 * 60 * 1000);
        if (!link || !link.ok) throw new Error(link ? 'Firefox did not link this account.' : 'Firefox did not answer.');
      }
      if (oauth) code = await authorize(s, creds, session);
    } catch (e) {
      await drop();
      throw e;
    }
    if (firefox) {
      const login = { email, sessionToken: s.sessionToken, uid: s.uid, verified: true, services: { sync: syncService(action) } };
      if (!oauth || !oauth.peer) {
        // Pre-OAuth Firefox (fx_desktop_v3) fetches the keys itself.
        login.keyFetchToken = s.keyFetchToken;
        login.unwrapBKey = P.hex(creds.unwrapBKey);
      }
      setStatus('Connecting Firefox…');
      // Firefox handles one message at a time; its answer means the
      // session is stored before the code arrives.
      await channel.request('fxaccounts:login', login, 15000);
      if (!code) {
        done('You are signed in. Firefox is setting up Sync.', false);
        return;
      }
      const r = await channel.request('fxaccounts:oauth_login',
        { action, code: code.code, state: code.state, redirect: code.redirect || '' }, 30000);
      if (!r) throw new Error('Firefox did not confirm the sign-in. Close this tab and try again.');
      done('You are signed in. Firefox is now syncing with this server.', false);
      return;
    }
    if (/^https?:\/\//.test(code.redirect || '')) {
      setStatus('Returning to the application…');
      location.assign(code.redirect);
      return;
    }
    await drop();
    fail('Signed in, but this application has no address to return to.');
  }

  // authorize fetches kB, derives the scoped keys the relier may have,
  // encrypts them to its keys_jwk and asks for an authorization code.
  async function authorize(s, creds, session) {
    setStatus('Fetching your keys…');
    const req = {
      client_id: oauth.clientId, scope: oauth.scope, state: oauth.state, response_type: 'code',
      access_type: oauth.accessType, code_challenge: oauth.challenge, code_challenge_method: oauth.method,
    };
    if (oauth.peer) {
      const kb = await api('GET', '/account/keys', undefined, await bearer(s.keyFetchToken, 'keyFetchToken'));
      const { kB } = await P.unwrapKeys(P.unhex(s.keyFetchToken), P.unhex(kb.bundle), creds.unwrapBKey);
      const data = await api('POST', '/account/scoped-key-data', { client_id: oauth.clientId, scope: oauth.scope }, session);
      const keys = {};
      for (const scope of Object.keys(data)) {
        if (scope === P.OLDSYNC) keys[scope] = await P.oldsyncKey(kB, data[scope].keyRotationTimestamp);
      }
      if (Object.keys(keys).length) {
        req.keys_jwe = await P.encryptJWE(oauth.peer, new TextEncoder().encode(JSON.stringify(keys)));
      }
    }
    if (oauth.redirectUri) req.redirect_uri = oauth.redirectUri;
    const code = await api('POST', '/oauth/authorization', req, session);
    if (code.state !== oauth.state) throw new Error('The server answered for another sign-in.');
    return code;
  }

  function done(msg, instructions) {
    $('form').hidden = true;
    showError('');
    setStatus('');
    $('title').textContent = 'Done';
    const info = $('info');
    info.hidden = false;
    info.textContent = '';
    const p = document.createElement('p');
    p.id = 'done-message';
    p.textContent = msg;
    info.append(p);
    if (instructions) info.append(...syncInstructions());
    setStep('done');
  }

  function syncInstructions() {
    const p = document.createElement('p');
    p.append('Now sign in from Firefox: open ');
    const c1 = document.createElement('code');
    c1.textContent = 'about:config';
    const c2 = document.createElement('code');
    c2.textContent = 'identity.fxaccounts.autoconfig.uri';
    const c3 = document.createElement('code');
    c3.textContent = base;
    p.append(c1, ', set ', c2, ' to ', c3, ', then choose “Sign in to sync” in Firefox’s menu and sign in with ' +
      (email || 'your email') + '.');
    return [p];
  }

  function infoView() {
    $('title').textContent = 'Sync account';
    const info = $('info');
    info.hidden = false;
    const p = document.createElement('p');
    p.textContent = 'Managing accounts in the browser is not available on this server. ' +
      'Your password can be reset by its operator (weave account reset-password).';
    info.append(p, ...syncInstructions());
    setStep('info');
  }

  async function onSubmit(e) {
    e.preventDefault();
    if (body.dataset.step === 'working') return;
    showError('');
    busy(true);
    const was = step;
    setStep('working');
    try {
      if (was === 'email') await submitEmail();
      else if (was === 'signin') await submitSignin();
      else if (was === 'signup') await submitSignup();
    } catch (err) {
      showError(explain(err));
      setStatus('');
    } finally {
      busy(false);
      if (body.dataset.step === 'working') setStep(step);
    }
  }

  async function start() {
    body.dataset.mode = firefox ? 'firefox' : 'plain';
    if (body.dataset.view === 'settings') return; // settings.js
    if (body.dataset.view === 'info') {
      infoView();
      return;
    }
    try {
      oauth = await readOAuth();
      if (oauth) {
        // Fail before asking for a password if the relier is unknown.
        oauth.client = await api('GET', '/client/' + oauth.clientId);
      }
    } catch (e) {
      fail(e instanceof ApiError && e.errno === 162
        ? 'This sign-in link is for an application this server does not know (client_id ' + q.get('client_id') + ').'
        : explain(e));
      return;
    }
    if (firefox) {
      $('subtitle').textContent = 'to sync Firefox with this server';
      let status = null;
      try {
        status = await channel.request('fxaccounts:fxa_status',
          { service: q.get('service') || 'sync', context, isPairing: false }, 1500);
      } catch (e) {
        // "No Such Channel": Firefox's account channel listens to another
        // origin, so nothing this page could send would reach it.
        fail(e.message);
        return;
      }
      if (status && status.signedInUser && status.signedInUser.email) {
        $('email').value = status.signedInUser.email;
      }
      if (status && status.capabilities && status.capabilities.choose_what_to_sync) {
        offerEngines(status.capabilities.engines);
      }
      if (!status) {
        // No answer at all: not Firefox, or an old one. Let the user try.
        setStatus('Firefox has not answered this page. If signing in does not finish, open it from Firefox: ' + notConnected);
      }
    } else if (oauth) {
      $('subtitle').textContent = oauth.clientId === FIREFOX_DESKTOP ? 'to sync Firefox' : 'to continue to the application';
    } else {
      $('subtitle').textContent = 'for Firefox Sync on ' + base;
    }
    $('form').addEventListener('submit', onSubmit);
    $('change-email').addEventListener('click', e => {
      e.preventDefault();
      $('password').value = '';
      $('password-confirm').value = '';
      showError('');
      show('email');
    });
    $('captcha-refresh').addEventListener('click', () => loadCaptcha());
    show('email');
    const pre = q.get('email');
    if (pre && !$('email').value) {
      $('email').value = pre;
    }
  }

  start();
})();
