// The permissions page of `rpa-access serve --ui`: plain browser JavaScript, no framework, no
// build step. It asks the decision API (/v1) of the server that served it, with a bearer token the
// user enters once and that lives in this closure only: never in localStorage, sessionStorage,
// a cookie or the URL. Everything shown is put into the page as text (textContent,
// setAttribute), never as HTML: user, group, binding and folder names come from YAML.
'use strict';

(() => {
  /** The bearer token: in memory, for this tab's life. */
  let token = null;
  /** Tenants this token may see, as GET /v1/tenants lists them. */
  let tenants = [];
  const state = { tenant: '', user: '', view: 'permissions' };
  /** The matrix's page: users and folders are paged by the server (GET .../matrix). */
  const matrixPage = { offset: 0, folderOffset: 0, folder: '' };
  /** Page sizes of the matrix: as many users and folders as a screen can show readably. */
  const MATRIX_USERS = 100;
  const MATRIX_FOLDERS = 50;
  /** Drops answers that arrive after the user has moved on. */
  let generation = 0;

  const $ = (id) => document.getElementById(id);
  const VIEWS = ['permissions', 'who', 'matrix'];
  const ROLE_COLOURS = 8;

  /** An element with attributes and children; strings become text nodes, never markup. */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (value === undefined || value === null || value === false) continue;
      if (name === 'onclick') node.addEventListener('click', value);
      else node.setAttribute(name, value === true ? '' : String(value));
    }
    for (const child of children.flat()) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  /** GET ../v1/PATH (relative: the page may sit behind a proxy's path prefix) with the token. */
  async function api(path, params) {
    const url = new URL(`../v1/${path}`, document.baseURI);
    for (const [k, v] of Object.entries(params || {})) if (v !== undefined && v !== '') url.searchParams.set(k, v);
    let response;
    try {
      response = await fetch(url, {
        headers: { authorization: `Bearer ${token}`, accept: 'application/json' },
        cache: 'no-store', credentials: 'omit', referrerPolicy: 'no-referrer',
      });
    } catch (err) {
      throw new ApiError(0, `the server cannot be reached (${err && err.message ? err.message : err})`);
    }
    let body = null;
    try {
      body = await response.json();
    } catch {
      // not JSON: the status says enough
    }
    if (!response.ok) throw new ApiError(response.status, body && typeof body.error === 'string' ? body.error : response.statusText);
    return body;
  }

  const seg = encodeURIComponent;

  /** One sentence for people: what went wrong and what to do. */
  function explain(err, tenant) {
    if (!(err instanceof ApiError)) return `Unexpected error: ${err && err.message ? err.message : String(err)}`;
    switch (err.status) {
      case 0: return `Network error: ${err.message}.`;
      case 401: return `The server refused this token (401): ${err.message}. Enter a valid token.`;
      case 403: return `Forbidden (403): this token may not see tenant "${tenant}". Ask for access to it, or pick another tenant.`;
      case 404: return `Not found (404): ${err.message}.`;
      case 503: return `The server is not ready (503): ${err.message}. Try again in a moment.`;
      default: return `Error ${err.status}: ${err.message}`;
    }
  }

  function showMessage(text) {
    const box = $('message');
    box.textContent = text;
    box.hidden = !text;
  }

  /** An error in a result area; a refused token also sends the user back to the token form. */
  function showError(area, err) {
    if (err instanceof ApiError && err.status === 401) {
      signOut(explain(err));
      return;
    }
    area.replaceChildren(el('p', { class: 'error', role: 'alert' }, explain(err, state.tenant)));
  }

  const loading = (area, what) => area.replaceChildren(el('p', { class: 'loading' }, `Loading ${what}…`));

  // ---- where we are: the URL's fragment holds the tenant, view and question, never the token ----

  function readHash() {
    const params = new URLSearchParams(location.hash.slice(1));
    return Object.fromEntries(params.entries());
  }

  function writeHash(extra) {
    const params = new URLSearchParams();
    if (state.tenant) params.set('tenant', state.tenant);
    params.set('view', state.view);
    if (state.user && state.view === 'permissions') params.set('user', state.user);
    for (const [k, v] of Object.entries(extra || {})) if (v) params.set(k, v);
    history.replaceState(null, '', `#${params}`);
  }

  // ---- token ----

  async function signIn(event) {
    event.preventDefault();
    const input = $('token');
    const typed = input.value.trim();
    input.value = '';
    if (!typed) return;
    token = typed;
    showMessage('');
    let catalog;
    try {
      [{ tenants }, catalog] = await Promise.all([api('tenants'), api('permissions')]);
    } catch (err) {
      signOut(explain(err));
      return;
    }
    $('token-form').hidden = true;
    $('session').hidden = false;
    $('main').hidden = false;
    fillPermissions(catalog.permissions);
    const wanted = readHash();
    fillTenants(wanted.tenant);
    if (VIEWS.includes(wanted.view)) state.view = wanted.view;
    markTabs();
    if (tenants.length === 0 && !wanted.tenant) {
      showMessage('This token may not see any tenant (each tenant is authorized separately). Ask for access, or use another token.');
      return;
    }
    await selectTenant($('tenant').value, wanted);
  }

  function signOut(message) {
    token = null;
    tenants = [];
    generation++;
    state.tenant = '';
    state.user = '';
    for (const id of ['tenant', 'user', 'who-permission', 'folders', 'permissions-result', 'who-result', 'matrix-result', 'matrix-paging']) $(id).replaceChildren();
    $('tenant-info').textContent = '';
    $('main').hidden = true;
    $('session').hidden = true;
    $('token-form').hidden = false;
    showMessage(message || '');
    $('token').focus();
  }

  // ---- pickers ----

  function fillPermissions(permissions) {
    $('who-permission').replaceChildren(
      ...['Tenant', 'Folder'].map((scope) =>
        el('optgroup', { label: `${scope} permissions` }, permissions.filter((p) => p.scope === scope).map((p) => el('option', { value: p.permission }, p.permission))),
      ),
    );
  }

  function fillTenants(wanted) {
    const names = tenants.map((t) => t.name);
    // A tenant named in the link but not listed is still asked for: the API then says why not (403).
    if (wanted && !names.includes(wanted)) names.push(wanted);
    $('tenant').replaceChildren(...names.map((n) => el('option', { value: n }, n)));
    if (wanted) $('tenant').value = wanted;
  }

  async function selectTenant(tenant, wanted = {}) {
    const mine = ++generation;
    state.tenant = tenant;
    state.user = '';
    Object.assign(matrixPage, { offset: 0, folderOffset: 0, folder: '' });
    $('matrix-folder').value = '';
    $('matrix-paging').replaceChildren();
    showMessage('');
    const info = tenants.find((t) => t.name === tenant);
    $('tenant-info').textContent = info ? `${info.users} users · ${info.bindings} bindings · revision ${info.revision}` : '';
    $('user').replaceChildren();
    $('folders').replaceChildren();
    for (const id of ['permissions-result', 'who-result', 'matrix-result']) $(id).replaceChildren();
    let users;
    try {
      ({ users } = await api(`tenants/${seg(tenant)}/users`));
    } catch (err) {
      if (mine !== generation) return;
      if (err instanceof ApiError && err.status === 401) return signOut(explain(err));
      showMessage(explain(err, tenant));
      return;
    }
    if (mine !== generation) return;
    $('user').replaceChildren(
      ...users.map((u) => el('option', { value: u.name }, `${u.name}${u.email && u.email !== u.name ? ` <${u.email}>` : ''}${u.active ? '' : ' (inactive)'}`)),
    );
    const pick = users.find((u) => u.name === wanted.user || u.email === wanted.user) || users.find((u) => u.active) || users[0];
    state.user = pick ? pick.name : '';
    $('user').value = state.user;
    if (wanted.permission) $('who-permission').value = wanted.permission;
    for (const k of ['folder', 'resource', 'environment']) if (wanted[k]) $(`who-${k}`).value = wanted[k];
    await showView(state.view, Boolean(wanted.permission));
  }

  // ---- views ----

  function markTabs() {
    for (const v of VIEWS) {
      $(`view-${v}`).hidden = v !== state.view;
      $(`tab-${v}`).setAttribute('aria-selected', String(v === state.view));
    }
  }

  async function showView(view, runWho = false) {
    state.view = view;
    markTabs();
    writeHash();
    if (!state.tenant) return;
    if (view === 'permissions') await loadPermissions();
    else if (view === 'matrix') await loadMatrix();
    else if (runWho) await searchWho();
    else if ($('folders').childElementCount === 0) void loadFolders();
  }

  const PROVENANCE = [
    [/^user$/, () => ['explicit', 'via-user']],
    [/^group:(.*)$/s, (m) => [`via group ${m[1]}`, 'via-group']],
    [/^directory:(.*)$/s, (m) => [`via directory group ${m[1]}`, 'via-directory']],
  ];

  /** Where a grant comes from, in words: explicit, via group G, via directory group D. */
  function provenance(grant) {
    for (const [re, say] of PROVENANCE) {
      const m = re.exec(grant.via);
      if (m) {
        const [text, cls] = say(m);
        const until = grant.sessionExpiresAt ? ` (session until ${grant.sessionExpiresAt})` : '';
        return el('span', { class: cls }, text + until);
      }
    }
    return el('span', {}, grant.via);
  }

  const bindingName = (binding) => (binding === null ? 'implicit (robot)' : binding);

  function narrowing(row) {
    const parts = [];
    if (row.resources) parts.push(...row.resources.map((r) => `${r.kind}/${r.name}`));
    if (row.environment) parts.push(`environment ${row.environment}`);
    if (row.expiresAt) parts.push(`until ${row.expiresAt}`);
    return parts.length > 0 ? parts.join(', ') : '—';
  }

  async function loadPermissions() {
    const area = $('permissions-result');
    if (!state.user) {
      area.replaceChildren(el('p', { class: 'empty' }, `Tenant ${state.tenant} has no users.`));
      return;
    }
    const mine = generation;
    const user = state.user;
    loading(area, `the permissions of ${user}`);
    let permissions;
    try {
      ({ permissions } = await api(`tenants/${seg(state.tenant)}/users/${seg(user)}/permissions`));
    } catch (err) {
      if (mine === generation && user === state.user) showError(area, err);
      return;
    }
    if (mine !== generation || user !== state.user) return;
    if (permissions.length === 0) {
      area.replaceChildren(el('p', { class: 'empty' }, `${user} holds no permission in tenant ${state.tenant} (no binding reaches them, or the user is inactive).`));
      return;
    }
    // Folder -> grant (role, binding, provenance, narrowing) -> permissions.
    const byFolder = new Map();
    for (const row of permissions) {
      const folder = row.folder === null ? '' : row.folder;
      if (!byFolder.has(folder)) byFolder.set(folder, new Map());
      const grants = byFolder.get(folder);
      const key = JSON.stringify([row.role, row.binding, row.via, row.resources || null, row.environment || null, row.expiresAt || null, row.sessionExpiresAt || null]);
      if (!grants.has(key)) grants.set(key, { row, permissions: [] });
      grants.get(key).permissions.push(row.permission);
    }
    const folders = [...byFolder.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    area.replaceChildren(
      el('p', { class: 'muted' }, `${user}: ${permissions.length} grants of permissions, in ${folders.length} ${folders.length === 1 ? 'place' : 'places'}.`),
      ...folders.map((folder) => {
        const grants = [...byFolder.get(folder).values()];
        return el('section', { class: 'folder', 'data-folder': folder },
          el('h2', {}, folder === '' ? 'Tenant-wide' : `Folder ${folder}`, ' ', el('span', { class: 'count' }, `(${grants.reduce((n, g) => n + g.permissions.length, 0)})`)),
          el('table', {},
            el('thead', {}, el('tr', {}, ['Role', 'Binding', 'Granted', 'Narrowed to', 'Permissions'].map((h) => el('th', {}, h)))),
            el('tbody', {}, grants.map(({ row, permissions: held }) =>
              el('tr', {},
                el('td', {}, row.role),
                el('td', {}, bindingName(row.binding)),
                el('td', {}, provenance(row)),
                el('td', {}, narrowing(row)),
                el('td', {}, held.map((p) => el('span', { class: 'chip' }, p))),
              ))),
          ));
      }),
    );
  }

  async function searchWho(event) {
    if (event) event.preventDefault();
    const area = $('who-result');
    const question = {
      permission: $('who-permission').value,
      folder: $('who-folder').value.trim(),
      resource: $('who-resource').value.trim(),
      environment: $('who-environment').value.trim(),
    };
    writeHash(question);
    const mine = generation;
    loading(area, 'who can');
    let users;
    try {
      ({ users } = await api(`tenants/${seg(state.tenant)}/who`, question));
    } catch (err) {
      if (mine === generation) showError(area, err);
      return;
    }
    if (mine !== generation) return;
    const where = [question.folder && `in folder ${question.folder}`, question.resource && `on ${question.resource}`, question.environment && `in environment ${question.environment}`].filter(Boolean).join(' ');
    const asked = `${question.permission}${where ? ` ${where}` : ''}`;
    if (users.length === 0) {
      area.replaceChildren(el('p', { class: 'empty' }, `Nobody in tenant ${state.tenant} may ${asked}.`));
      return;
    }
    area.replaceChildren(
      el('p', { class: 'muted' }, `${users.length} ${users.length === 1 ? 'user' : 'users'} may ${asked}:`),
      el('table', {},
        el('thead', {}, el('tr', {}, ['User', 'Role', 'Binding', 'Granted', 'On folder'].map((h) => el('th', {}, h)))),
        el('tbody', {}, users.flatMap((u) => u.grants.map((g, i) =>
          el('tr', {},
            el('td', {}, i === 0 ? el('button', { type: 'button', class: 'link', onclick: () => openUser(u.user) }, u.user) : ''),
            el('td', {}, g.role),
            el('td', {}, bindingName(g.binding)),
            el('td', {}, provenance(g)),
            el('td', {}, g.folder === null ? 'tenant-wide' : g.folder),
          )))),
      ),
    );
  }

  function openUser(user) {
    state.user = user;
    $('user').value = user;
    void showView('permissions');
  }

  function fillFolders(folders) {
    $('folders').replaceChildren(...folders.map((f) => el('option', { value: f })));
  }

  /** Folder suggestions for the who-can form: the matrix's columns, without its rows. */
  async function loadFolders() {
    const mine = generation;
    try {
      const { folders } = await api(`tenants/${seg(state.tenant)}/matrix`, { limit: '1', folderLimit: '200' });
      if (mine === generation) fillFolders(folders);
    } catch {
      // suggestions only: the search itself reports errors
    }
  }

  async function loadMatrix() {
    const area = $('matrix-result');
    const mine = generation;
    loading(area, 'the access matrix');
    let matrix;
    try {
      matrix = await api(`tenants/${seg(state.tenant)}/matrix`, {
        offset: String(matrixPage.offset), limit: String(MATRIX_USERS),
        folderOffset: String(matrixPage.folderOffset), folderLimit: String(MATRIX_FOLDERS), folder: matrixPage.folder,
      });
    } catch (err) {
      if (mine === generation) showError(area, err);
      return;
    }
    if (mine !== generation) return;
    if (!matrixPage.folder && matrixPage.folderOffset === 0) fillFolders(matrix.folders);
    renderPaging(matrix);
    if (matrix.users.length === 0 || matrix.folders.length === 0) {
      const none = matrix.users.length === 0 ? `Tenant ${state.tenant} has no users.`
        : matrixPage.folder ? `No binding of tenant ${state.tenant} names a folder under ${matrixPage.folder}.` : `No binding of tenant ${state.tenant} names a folder.`;
      area.replaceChildren(el('p', { class: 'empty' }, none));
      return;
    }
    const colour = new Map(matrix.roles.map((r, i) => [r.role, `r${Math.min(i, ROLE_COLOURS - 1)}`]));
    const legend = el('div', { class: 'legend' },
      el('strong', {}, 'Strongest role in the folder:'),
      matrix.roles.map((r) => el('span', { class: colour.get(r.role), title: `${r.permissions} folder permissions, ${r.changes} of them changing something` }, r.role)),
      el('span', { class: 'muted' }, '* narrowed to objects or an environment'),
    );
    const header = el('tr', {}, el('th', { class: 'user' }, 'User'), matrix.folders.map((f) => el('th', { scope: 'col' }, f)));
    const rows = matrix.users.map((u) => {
      const cells = new Map(u.cells.map((c) => [c.folder, c]));
      return el('tr', {},
        el('td', { class: 'user' }, el('button', { type: 'button', class: `link${u.active ? '' : ' inactive'}`, onclick: () => openUser(u.user) }, u.user)),
        matrix.folders.map((f) => {
          const c = cells.get(f);
          if (!c) return el('td', { class: 'cell none' }, '·');
          const from = c.from === null ? 'tenant-wide' : `on ${c.from}`;
          const also = c.roles.length > 1 ? `; also ${c.roles.slice(1).join(', ')}` : '';
          const title = `${c.role}: ${c.permissions} folder permissions (${c.changes} changing), binding ${bindingName(c.binding)} ${from}, ${c.via === 'user' ? 'explicit' : `via ${c.via}`}${also}`;
          return el('td', { class: `cell ${colour.get(c.role)}${c.narrowed ? ' narrowed' : ''}`, title, 'data-role': c.role }, c.role);
        }),
      );
    });
    const table = el('div', { class: 'matrix-wrap' }, el('table', { class: 'matrix' }, el('thead', {}, header), el('tbody', {}, rows)));
    area.replaceChildren(legend, table);
  }

  /** Users i–j of n and folders i–j of n, each with previous / next when there are more. */
  function renderPaging(matrix) {
    const pager = (what, offset, shown, total, size, key) => {
      const step = (delta) => () => {
        matrixPage[key] = Math.max(0, matrixPage[key] + delta);
        void loadMatrix();
      };
      return el('span', {},
        `${what} ${shown === 0 ? 0 : offset + 1}–${offset + shown} of ${total}`,
        el('button', { type: 'button', title: `previous ${what}`, disabled: offset === 0, onclick: step(-size) }, '‹'),
        el('button', { type: 'button', title: `next ${what}`, disabled: offset + shown >= total, onclick: step(size) }, '›'),
      );
    };
    $('matrix-paging').replaceChildren(
      pager('users', matrixPage.offset, matrix.users.length, matrix.totalUsers, MATRIX_USERS, 'offset'),
      pager('folders', matrixPage.folderOffset, matrix.folders.length, matrix.totalFolders, MATRIX_FOLDERS, 'folderOffset'),
    );
  }

  // ---- wiring ----

  document.addEventListener('DOMContentLoaded', () => {
    $('token-form').addEventListener('submit', (e) => void signIn(e));
    $('forget').addEventListener('click', () => signOut('Token forgotten.'));
    $('tenant').addEventListener('change', () => void selectTenant($('tenant').value));
    $('user').addEventListener('change', () => {
      state.user = $('user').value;
      writeHash();
      void loadPermissions();
    });
    $('who-form').addEventListener('submit', (e) => void searchWho(e));
    $('matrix-form').addEventListener('submit', (e) => {
      e.preventDefault();
      Object.assign(matrixPage, { offset: 0, folderOffset: 0, folder: $('matrix-folder').value.trim() });
      void loadMatrix();
    });
    for (const v of VIEWS) $(`tab-${v}`).addEventListener('click', () => void showView(v));
    $('token').focus();
  });
})();
