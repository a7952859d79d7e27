// Script of the kvassert proxy page. It holds no data: the secret comes from
// the developer (or from the URL fragment #secret=..., which browsers never
// send to a server) and stays in this tab (sessionStorage).
'use strict';
(function () {
  const $ = (id) => document.getElementById(id);
  const storeKey = 'kvassert-proxy-secret';
  const fields = ['clientId', 'tenantId', 'scopes', 'keyVaultUri', 'certificateName', 'keyUri', 'keyThumbprint', 'certFile', 'keyFile'];
  let token = '';
  let info = null;

  function loadSecret() {
    const params = new URLSearchParams(location.hash.slice(1));
    const fromURL = params.get('secret');
    if (fromURL) {
      $('secret').value = fromURL;
      try { sessionStorage.setItem(storeKey, fromURL); } catch (e) { /* storage disabled */ }
      // Drop the secret from the address bar and the history entry.
      history.replaceState(null, '', location.pathname + location.search);
      $('secret-note').textContent = 'Secret taken from the address.';
      return;
    }
    try {
      const stored = sessionStorage.getItem(storeKey);
      if (stored) { $('secret').value = stored; }
    } catch (e) { /* storage disabled */ }
  }

  // loadConfig prefills the empty fields with what the proxy was started
  // for (GET /api/config, behind the secret like all data).
  async function loadConfig() {
    const secret = $('secret').value.trim();
    if (!secret) { return; }
    try {
      const resp = await fetch('/api/config', {
        headers: { 'Authorization': 'Bearer ' + secret },
        cache: 'no-store',
        credentials: 'omit',
      });
      if (!resp.ok) { return; }
      const cfg = await resp.json();
      const fill = (id, value) => { if (value && !$(id).value.trim()) { $(id).value = value; } };
      fill('clientId', cfg.clientId);
      fill('tenantId', cfg.tenantId);
      fill('keyVaultUri', cfg.keyVaultUri);
      fill('certificateName', cfg.certificateName);
      if (cfg.files && cfg.files.length === 1) { fill('certFile', cfg.files[0]); }
      fillURLs(cfg);
      showLines(cfg.lines);
    } catch (e) {
      /* the form stays empty */
    } finally {
      document.body.dataset.config = 'done';
    }
  }

  // fillURLs turns the endpoint table's route templates into the real URLs
  // of this proxy (its address and port), with the configured tenant,
  // client, vault and certificate in place of their placeholders.
  function fillURLs(cfg) {
    const base = (cfg && cfg.base) || location.origin;
    let vault = '';
    if (cfg && cfg.keyVaultUri) {
      try { vault = new URL(cfg.keyVaultUri).hostname.split('.')[0]; } catch (e) { /* keep the placeholder */ }
    }
    const values = {
      tenant: cfg && cfg.tenantId, clientId: cfg && cfg.clientId, vault: vault,
      certificate: cfg && cfg.certificateName, name: cfg && cfg.files && cfg.files.length === 1 ? cfg.files[0] : '',
    };
    document.querySelectorAll('code[data-url]').forEach((el) => {
      const path = el.dataset.url.replace(/\{(tenant|clientId|vault|certificate|name)\}/g, (m, k) => values[k] || m);
      // A line break may come after each slash (<wbr>); a URL longer
      // than its line may also wrap anywhere (.long).
      el.replaceChildren();
      (base + path).split(/(?<=\/)/).forEach((part, i) => {
        if (i > 0) { el.append(document.createElement('wbr')); }
        el.append(part);
      });
    });
  }

  // showLines shows the ready-to-paste lines of GET /api/config.
  function showLines(groups) {
    const list = $('lines-list');
    list.replaceChildren();
    (groups || []).forEach((g) => {
      const p = document.createElement('p');
      p.className = 'note';
      p.textContent = String(g.title);
      const pre = document.createElement('pre');
      pre.className = 'lines';
      pre.textContent = (g.lines || []).map(String).join('\n');
      list.append(p, pre);
    });
    $('lines').hidden = list.childElementCount === 0;
  }

  // consentLink returns the admin-consent URL of a problem when it is one
  // the proxy built: https, a Microsoft login host, the adminconsent path,
  // and a client_id; anything else gets no link.
  const loginHosts = ['login.microsoftonline.com', 'login.chinacloudapi.cn', 'login.microsoftonline.us'];
  function consentLink(raw) {
    if (typeof raw !== 'string') { return ''; }
    let u;
    try { u = new URL(raw); } catch (e) { return ''; }
    const guid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
    if (u.protocol !== 'https:' || !loginHosts.includes(u.hostname) || u.port !== '' || u.username || u.password || u.hash ||
        !/^\/[A-Za-z0-9.-]+\/(v2\.0\/)?adminconsent$/.test(u.pathname) || !guid.test(u.searchParams.get('client_id') || '')) {
      return '';
    }
    return u.href;
  }
  // The Tenants view (tenants.js, loaded after this script) vets its links
  // with the same check.
  window.kvassertConsentLink = consentLink;

  function showFields() {
    const route = $('route').value;
    document.querySelectorAll('[data-routes]').forEach((el) => {
      el.hidden = !el.dataset.routes.split(' ').includes(route);
    });
  }

  function clearMessages() {
    $('problem').hidden = true;
    $('problem-errors').replaceChildren();
    $('problem-consent').hidden = true;
    $('consent-link').removeAttribute('href');
    $('consent-link').textContent = '';
    fields.forEach((f) => {
      $('err-' + f).textContent = '';
      $(f).removeAttribute('aria-invalid');
    });
    $('status').textContent = '';
  }

  function requestBody(route) {
    const v = (id) => $(id).value.trim();
    switch (route) {
      case 'kv-key-info':
        return { keyVaultUri: v('keyVaultUri'), certificateName: v('certificateName'), skipCache: $('skipCache').checked };
      case 'kv-certificate':
        return { clientId: v('clientId'), tenantId: v('tenantId'), scopes: scopeList(), keyVaultUri: v('keyVaultUri'), certificateName: v('certificateName') };
      case 'kv-key':
        return { clientId: v('clientId'), tenantId: v('tenantId'), scopes: scopeList(), keyUri: v('keyUri'), keyThumbprint: v('keyThumbprint') };
      case 'local-certificate': {
        const body = { clientId: v('clientId'), tenantId: v('tenantId'), scopes: scopeList(), certFile: v('certFile') };
        if (v('keyFile')) { body.keyFile = v('keyFile'); }
        return body;
      }
    }
    return {};
  }

  function scopeList() {
    return $('scopes').value.split(/\s+/).filter((s) => s !== '');
  }

  // truncate shows the start and end of a token: enough to recognise it,
  // too little to use it. The copy button copies the whole token.
  function truncate(t) {
    return t.length <= 40 ? t : t.slice(0, 24) + '…' + t.slice(-12);
  }

  function claimsOf(jwt) {
    try {
      const p = jwt.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
      const json = atob(p + '==='.slice((p.length + 3) % 4));
      return JSON.parse(decodeURIComponent(Array.from(json, (c) => '%' + c.charCodeAt(0).toString(16).padStart(2, '0')).join('')));
    } catch (e) {
      return null;
    }
  }

  function addRow(list, name, value) {
    const dt = document.createElement('dt');
    dt.textContent = name;
    const dd = document.createElement('dd');
    dd.textContent = value;
    list.append(dt, dd);
  }

  function showToken(data) {
    token = data.access_token || '';
    $('token-display').textContent = truncate(token);
    $('token-tenant').textContent = data.tenant_id || '';
    $('token-scopes').textContent = (data.scopes || []).join(' ');
    $('token-expires').textContent = new Date(data.expires_on * 1000).toISOString() + ' (in ' + Math.round(data.expires_in / 60) + ' min)';
    $('copy').textContent = 'Copy token';
    const claims = claimsOf(token);
    const list = $('claims');
    list.replaceChildren();
    if (claims) {
      ['aud', 'tid', 'appid', 'azp', 'roles', 'iss', 'exp'].forEach((k) => {
        if (claims[k] !== undefined) { addRow(list, k, Array.isArray(claims[k]) ? claims[k].join(' ') : String(claims[k])); }
      });
    }
    $('result').hidden = false;
  }

  function showInfo(data) {
    info = data;
    const list = $('info-list');
    list.replaceChildren();
    ['keyId', 'kid', 'thumbprint', 'thumbprintSha256', 'x5tS256', 'subject', 'notBefore', 'expiresOn', 'exportable', 'readAt'].forEach((k) => {
      if (data[k] !== undefined) { addRow(list, k, String(data[k])); }
    });
    $('info').hidden = false;
  }

  function showProblem(p, status) {
    $('problem').hidden = false;
    $('problem-title').textContent = (p && p.title) || ('HTTP ' + status);
    $('problem-detail').textContent = [p && p.detail, p && p.hint ? 'Hint: ' + p.hint : ''].filter(Boolean).join(' ');
    const consent = consentLink(p && p.consentUrl);
    if (consent) {
      $('consent-link').href = consent;
      $('consent-link').textContent = consent;
      $('problem-consent').hidden = false;
    }
    const ul = $('problem-errors');
    ((p && p.errors) || []).forEach((e) => {
      const field = String(e.field).replace(/\[\d+\]$/, '');
      const span = $('err-' + field);
      if (span && fields.includes(field)) {
        span.textContent = e.message;
        $(field).setAttribute('aria-invalid', 'true');
      } else {
        const li = document.createElement('li');
        li.textContent = e.field + ': ' + e.message;
        ul.append(li);
      }
    });
  }

  async function send(ev) {
    ev.preventDefault();
    clearMessages();
    $('result').hidden = true;
    $('info').hidden = true;
    const secret = $('secret').value.trim();
    if (!secret) {
      $('status').textContent = 'Failed: no secret';
      showProblem({ title: 'No secret', detail: 'Paste the secret that kvassert proxy printed at start.' }, 0);
      return;
    }
    try { sessionStorage.setItem(storeKey, secret); } catch (e) { /* storage disabled */ }
    const route = $('route').value;
    $('status').textContent = 'Sending…';
    $('submit').disabled = true;
    try {
      const resp = await fetch('/api/token/' + route, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'Authorization': 'Bearer ' + secret },
        body: JSON.stringify(requestBody(route)),
        cache: 'no-store',
        credentials: 'omit',
      });
      const data = await resp.json().catch(() => null);
      if (!resp.ok) {
        $('status').textContent = 'Failed (HTTP ' + resp.status + ')';
        showProblem(data, resp.status);
        return;
      }
      if (route === 'kv-key-info') {
        $('status').textContent = 'Certificate read';
        showInfo(data);
      } else {
        $('status').textContent = 'Token received';
        showToken(data);
      }
    } catch (e) {
      $('status').textContent = 'Failed';
      showProblem({ title: 'Request failed', detail: String(e) }, 0);
    } finally {
      $('submit').disabled = false;
    }
  }

  async function copyToken() {
    if (!token) { return; }
    try {
      await navigator.clipboard.writeText(token);
    } catch (e) {
      const ta = document.createElement('textarea');
      ta.value = token;
      document.body.append(ta);
      ta.select();
      document.execCommand('copy');
      ta.remove();
    }
    $('copy').textContent = 'Copied';
  }

  function useKey() {
    if (!info) { return; }
    $('keyUri').value = info.keyId;
    $('keyThumbprint').value = info.kid;
    $('route').value = 'kv-key';
    showFields();
  }

  document.addEventListener('DOMContentLoaded', () => {
    loadSecret();
    showFields();
    fillURLs(null);
    loadConfig();
    $('secret').addEventListener('change', loadConfig);
    $('route').addEventListener('change', () => { clearMessages(); showFields(); });
    $('token-form').addEventListener('submit', send);
    $('copy').addEventListener('click', copyToken);
    $('use-key').addEventListener('click', useKey);
    document.body.dataset.ready = 'true';
  });
})();
