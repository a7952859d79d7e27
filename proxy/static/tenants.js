// The Tenants view of the kvassert proxy page: GET /api/tenants (behind the
// secret, which app.js keeps in the #secret field), rendered as a table.
// Every value goes in as text; the only link is an admin-consent URL that
// passes app.js's consent-link check (window.kvassertConsentLink).
'use strict';
(function () {
  const $ = (id) => document.getElementById(id);
  const refusals = {
    ok: 'gets tokens with every required role',
    missing_roles: 'tokens, but required roles are missing: consent again',
    unreachable: 'no answer from Entra ID or Key Vault',
    app_not_found: 'the app is not in the tenant: never consented, or removed',
    app_disabled: 'the app is disabled in the tenant',
    tenant_not_found: 'no such tenant',
    tenant_invalid: 'not a valid tenant',
    conditional_access: 'blocked by Conditional Access',
    app_missing_service_principal: 'the app has no service principal in its home tenant',
    resource_not_found: 'a resource is not in the tenant',
    refused: 'Entra ID refused the token request',
    not_allowed: 'the credential is not allowed this tenant',
  };

  // consentHref returns the report's consent link when it is an
  // admin-consent URL of a Microsoft login host for a client ID, else ''
  // (app.js's check, one for the whole page).
  function consentHref(raw) {
    return typeof window.kvassertConsentLink === 'function' ? window.kvassertConsentLink(raw) : '';
  }

  function code(text) {
    const c = document.createElement('code');
    c.textContent = String(text);
    return c;
  }

  // roleList lists roles per resource ("resource: A, B"), or "none".
  function roleList(resources, key) {
    const td = document.createElement('td');
    const lines = [];
    (resources || []).forEach((r) => {
      const roles = (r[key] || []).map(String);
      if (key === 'required' && roles.length === 0) { return; }
      lines.push({ resource: String(r.resource), roles: roles });
    });
    if (lines.length === 0) {
      td.textContent = key === 'required' ? 'none (a token is enough)' : '—';
      return td;
    }
    lines.forEach((l, i) => {
      if (i > 0) { td.append(document.createElement('br')); }
      const span = document.createElement('span');
      span.className = 'note';
      span.textContent = l.resource.replace(/^https:\/\//, '') + ': ';
      td.append(span);
      if (l.roles.length === 0) { td.append('none'); }
      l.roles.forEach((role, j) => {
        if (j > 0) { td.append(' '); }
        td.append(code(role));
      });
    });
    return td;
  }

  function row(rep) {
    const tr = document.createElement('tr');
    tr.dataset.tenant = String(rep.tenant);
    tr.dataset.state = String(rep.state);
    const tenant = document.createElement('td');
    tenant.append(code(rep.tenant));
    const state = document.createElement('td');
    const strong = document.createElement('strong');
    strong.className = 'tenant-state';
    strong.textContent = String(rep.state) + (rep.code ? ' (AADSTS' + Number(rep.code) + ')' : '');
    state.append(strong);
    const why = document.createElement('div');
    why.className = 'note';
    why.textContent = refusals[rep.state] || '';
    if (rep.fromCache) { why.textContent += (why.textContent ? '; ' : '') + 'from the cache'; }
    if (rep.refusedUntil) { why.textContent += (why.textContent ? '; ' : '') + 'remembered, asked again after ' + String(rep.refusedUntil); }
    state.append(why);
    const todo = document.createElement('td');
    todo.className = 'long';
    const href = consentHref(rep.consentUrl);
    if (href) {
      const a = document.createElement('a');
      a.className = 'long consent';
      a.rel = 'noopener noreferrer';
      a.target = '_blank';
      a.href = href;
      a.textContent = 'Admin consent link';
      a.title = href;
      todo.append(a);
      todo.append(document.createElement('br'));
    }
    const hint = document.createElement('span');
    hint.className = 'note';
    let text = rep.hint ? String(rep.hint) : (rep.error ? String(rep.error) : '');
    if (href) {
      // The hint ends with the same link in parentheses: the <a> shows it.
      text = text.replace(/\s*\(https:\/\/[^\s()]+\)$/, '');
    }
    hint.textContent = text;
    todo.append(hint);
    tr.append(tenant, state, roleList(rep.resources, 'granted'), roleList(rep.resources, 'required'), todo);
    return tr;
  }

  async function check() {
    const secret = $('secret').value.trim();
    const status = $('tenants-status');
    if (!secret) {
      status.textContent = 'Paste the secret to check the tenants.';
      return;
    }
    status.textContent = 'Checking…';
    $('tenants-check').disabled = true;
    try {
      const resp = await fetch('/api/tenants', {
        headers: { 'Authorization': 'Bearer ' + secret },
        cache: 'no-store',
        credentials: 'omit',
      });
      const data = await resp.json().catch(() => null);
      if (!resp.ok || !data) {
        // No stale rows under a failed check.
        $('tenants-body').replaceChildren();
        $('tenants-result').hidden = true;
        status.textContent = 'Failed (HTTP ' + resp.status + ')' + (data && data.title ? ': ' + String(data.title) : '');
        return;
      }
      const body = $('tenants-body');
      body.replaceChildren();
      const reports = Array.isArray(data.tenants) ? data.tenants : [];
      reports.forEach((rep) => body.append(row(rep)));
      $('tenants-result').hidden = reports.length === 0;
      if (reports.length === 0) {
        status.textContent = 'No customer tenants configured: start kvassert proxy with --customer-tenant.';
      } else {
        const short = reports.filter((r) => r.state !== 'ok').length;
        status.textContent = reports.length + ' tenants of app ' + String(data.clientId) + ': ' + (short === 0 ? 'all ok' : short + (short === 1 ? ' falls short' : ' fall short'));
      }
    } catch (e) {
      $('tenants-body').replaceChildren();
      $('tenants-result').hidden = true;
      status.textContent = 'Failed: ' + String(e);
    } finally {
      $('tenants-check').disabled = false;
      document.body.dataset.tenants = 'done';
    }
  }

  document.addEventListener('DOMContentLoaded', () => {
    $('tenants-check').addEventListener('click', check);
    $('secret').addEventListener('change', check);
    if ($('secret').value.trim()) { check(); }
  });
})();
