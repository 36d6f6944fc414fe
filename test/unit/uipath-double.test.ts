/**
 * The UiPath test double: UiPath's semantics (tokens and scopes, replace on AssignRoles and
 * AssignUsers, static roles, folders in use, OData paging and filters, Identity) and its
 * strictness (what the vendor's schemas refuse is a 400), over real HTTP.
 */
import { startUiPathDouble, type UiPathDouble, type UiPathDoubleOptions } from '../support/uipath/index.js';

const A = 'UiPath.Server.Configuration.OData';

interface Reply {
  status: number;
  headers: Headers;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

class Client {
  token = '';
  constructor(
    readonly uip: UiPathDouble,
    readonly base = uip.orchestratorUrl(),
  ) {}

  async login(scope?: string, secret = this.uip.credentials.clientSecret): Promise<Reply> {
    const form: Record<string, string> = { grant_type: 'client_credentials', client_id: this.uip.credentials.clientId, client_secret: secret };
    if (scope !== undefined) form.scope = scope;
    const r = await this.raw('POST', `${this.uip.identityUrl}/connect/token`, new URLSearchParams(form).toString(), 'application/x-www-form-urlencoded');
    if (r.status === 200) this.token = r.body.access_token;
    return r;
  }

  async raw(method: string, url: string, body?: string, contentType = 'application/json', headers: Record<string, string> = {}): Promise<Reply> {
    const h: Record<string, string> = { ...headers };
    if (this.token) h.authorization = `Bearer ${this.token}`;
    if (body !== undefined) h['content-type'] = contentType;
    const res = await fetch(url, { method, headers: h, body });
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
  }

  /** Orchestrator call, path relative to the tenant's base (e.g. '/odata/Users'). */
  orch(method: string, path: string, body?: unknown, headers?: Record<string, string>): Promise<Reply> {
    return this.raw(method, this.base + path, body === undefined ? undefined : JSON.stringify(body), 'application/json', headers);
  }

  identity(method: string, path: string, body?: unknown): Promise<Reply> {
    return this.raw(method, `${this.uip.identityUrl}${path}`, body === undefined ? undefined : JSON.stringify(body));
  }
}

let uip: UiPathDouble;
let c: Client;

async function fresh(options: UiPathDoubleOptions = {}): Promise<void> {
  uip = await startUiPathDouble(options);
  c = new Client(uip);
  expect((await c.login()).status).toBe(200);
}

afterEach(async () => {
  await uip.stop(); // rejects if the double sent a response its schemas refuse
});

describe('tokens and scopes', () => {
  beforeEach(() => fresh({ application: { scopes: ['OR.Users', 'OR.Folders.Read', 'PM.User'] } }));

  it('issues a JWT carrying the organization (prt_id), the scopes and an expiry', async () => {
    const r = await c.login('OR.Users PM.User');
    expect(r.body).toEqual({ access_token: expect.any(String), expires_in: 3600, token_type: 'Bearer', scope: 'OR.Users PM.User' });
    const payload = JSON.parse(Buffer.from(r.body.access_token.split('.')[1], 'base64url').toString());
    expect(payload).toMatchObject({ prt_id: uip.organizationId, scope: ['OR.Users', 'PM.User'], client_id: uip.credentials.clientId });
    expect(payload.exp - payload.iat).toBe(3600);
  });

  it('refuses a wrong secret (401 invalid_client), a scope not granted (400 invalid_scope), another grant (400)', async () => {
    expect(await c.login(undefined, 'wrong')).toMatchObject({ status: 401, body: { error: 'invalid_client' } });
    expect(await c.login('OR.Users OR.Folders.Write')).toMatchObject({ status: 400, body: { error: 'invalid_scope' } });
    const r = await c.raw('POST', `${uip.identityUrl}/connect/token`, new URLSearchParams({ grant_type: 'password', client_id: 'x', client_secret: 'y' }).toString(), 'application/x-www-form-urlencoded');
    expect(r).toMatchObject({ status: 400, body: { error: 'unsupported_grant_type' } });
    const missing = await c.raw('POST', `${uip.identityUrl}/connect/token`, 'grant_type=client_credentials&client_id=x', 'application/x-www-form-urlencoded');
    expect(missing).toMatchObject({ status: 400, body: { error: 'invalid_request' } });
    const json = await c.raw('POST', `${uip.identityUrl}/connect/token`, '{}', 'application/json');
    expect(json).toMatchObject({ status: 400, body: { error: 'invalid_request' } });
  });

  it('answers 401 without a token, with an unknown one, and once tokens expire; 403 when a scope is missing', async () => {
    expect((await c.orch('GET', '/odata/Users')).status).toBe(200);
    uip.expireAllTokens();
    const expired = await c.orch('GET', '/odata/Users');
    expect(expired.status).toBe(401);
    expect(expired.headers.get('www-authenticate')).toContain('invalid_token');
    c.token = 'nonsense';
    expect((await c.orch('GET', '/odata/Users')).status).toBe(401);
    c.token = '';
    expect((await c.orch('GET', '/odata/Users')).status).toBe(401);
    await c.login();
    const forbidden = await c.orch('POST', '/odata/Folders', { DisplayName: 'X' });
    expect(forbidden.status).toBe(403);
    expect(forbidden.body.message).toContain('OR.Folders.Write');
    expect((await c.orch('GET', '/odata/Folders')).status).toBe(200);
  });

  it('a token lives for tokenLifetimeSeconds', async () => {
    await uip.stop();
    await fresh({ tokenLifetimeSeconds: 1 });
    expect((await c.orch('GET', '/odata/Users')).status).toBe(200);
    await new Promise((r) => setTimeout(r, 1100));
    expect((await c.orch('GET', '/odata/Users')).status).toBe(401);
  });

  it('rotating the secret refuses the old one, while tokens already issued stay valid', async () => {
    const old = uip.credentials.clientSecret;
    uip.setApplication({ clientSecret: 'rotated' });
    expect((await c.orch('GET', '/odata/Users')).status).toBe(200);
    expect((await c.login(undefined, old)).status).toBe(401);
    expect((await c.login(undefined, 'rotated')).status).toBe(200);
    uip.setScopes(['OR.Users']);
    expect((await c.login('PM.User')).body.error).toBe('invalid_scope');
  });
});

describe('strictness against the vendor schemas', () => {
  beforeEach(() => fresh());

  it('refuses an unknown property, a wrong type, a missing required property, bad JSON', async () => {
    const unknown = await c.orch('POST', '/odata/Users', { UserName: 'a', Foo: 1 });
    expect(unknown.status).toBe(400);
    expect(unknown.body).toMatchObject({ errorCode: 1000, message: expect.stringContaining("'Foo'"), traceId: expect.any(String) });
    expect((await c.orch('POST', '/odata/Users', { UserName: 5 })).status).toBe(400);
    expect((await c.orch('POST', '/odata/Users', { UserName: 'a', EmailAddress: 'not an email' })).status).toBe(400);
    expect((await c.orch('POST', '/odata/Folders', { Description: 'no name' })).status).toBe(400);
    expect((await c.orch('POST', `/odata/Users(1)/${A}.AssignRoles`, { roles: [1] })).status).toBe(400);
    expect((await c.orch('POST', `/odata/Folders/${A}.AssignUsers`, { assignments: { UserIds: ['1'], RolesPerFolder: [] } })).status).toBe(400);
    expect((await c.orch('POST', `/odata/Roles(1)/${A}.SetUsers`, { addedUserIds: [] })).status).toBe(400);
    expect((await c.orch('POST', '/odata/Roles', { Name: 'r', Permissions: [{ Name: 'Users.View', IsGranted: 'yes' }] })).status).toBe(400);
    expect((await c.raw('POST', `${c.base}/odata/Users`, '{"UserName":', 'application/json')).status).toBe(400);
    expect((await c.raw('POST', `${c.base}/odata/Users`, 'UserName=a', 'text/plain')).status).toBe(415);
    expect(uip.snapshot().users).toEqual({});
  });

  it('every implemented write refuses an unknown property and a wrong type, changing nothing, and accepts the valid body', async () => {
    const s = uip.seed({
      identityUsers: [{ email: 'ann@example.com' }],
      groups: [{ name: 'ops' }],
      robotAccounts: [{ name: 'bot' }],
      roles: [{ Name: 'Auditor', Type: 'Tenant' }],
      folders: ['F'],
      users: [{ UserName: 'u1' }],
      folderRoles: [{ user: 'u1', folder: 'F', roles: ['Automation User'] }],
    });
    const org = uip.organizationId;
    const annId = s.identityUsers['ann@example.com'];
    const cases: [string, 'orch' | 'identity', string, Record<string, unknown>][] = [
      ['POST', 'orch', '/odata/Users', { UserName: 'u2' }],
      ['PUT', 'orch', `/odata/Users(${s.users.u1})`, { UserName: 'u1', Name: 'U' }],
      ['PATCH', 'orch', `/odata/Users(${s.users.u1})`, { Surname: 'One' }],
      ['POST', 'orch', `/odata/Users(${s.users.u1})/${A}.AssignRoles`, { roleIds: [s.roles.Auditor] }],
      ['POST', 'orch', '/odata/Roles', { Name: 'New', Type: 'Folder' }],
      ['PUT', 'orch', `/odata/Roles(${s.roles.Auditor})`, { Name: 'Auditor', Type: 'Tenant' }],
      ['POST', 'orch', `/odata/Roles(${s.roles.Auditor})/${A}.SetUsers`, { addedUserIds: [s.users.u1], removedUserIds: [] }],
      ['POST', 'orch', '/odata/Folders', { DisplayName: 'G' }],
      ['PUT', 'orch', `/odata/Folders(${s.folders.F})`, { DisplayName: 'F2' }],
      ['POST', 'orch', `/odata/Folders/${A}.AssignUsers`, { assignments: { UserIds: [s.users.u1], RolesPerFolder: [{ FolderId: s.folders.F, RoleIds: [] }] } }],
      ['POST', 'orch', `/odata/Folders(${s.folders.F})/${A}.RemoveUserFromFolder`, { userId: s.users.u1 }],
      ['POST', 'identity', '/api/User', { email: 'new@example.com' }],
      ['PUT', 'identity', `/api/User/${annId}`, { displayName: 'Ann' }],
      ['POST', 'identity', '/api/Group', { partitionGlobalId: org, name: 'new-group' }],
      ['PUT', 'identity', `/api/Group/${s.groups.ops}`, { partitionGlobalId: org, directoryUserIDsToAdd: [annId] }],
      ['POST', 'identity', '/api/RobotAccount', { partitionGlobalId: org, name: 'new-bot' }],
      ['PUT', 'identity', `/api/RobotAccount/${s.robotAccounts.bot}`, { partitionGlobalId: org, displayName: 'Bot' }],
    ];
    for (const [method, api, path, body] of cases) {
      const call = (b: unknown): Promise<Reply> => (api === 'orch' ? c.orch(method, path, b) : c.identity(method, path, b));
      const before = JSON.stringify(uip.state());
      const firstKey = Object.keys(body)[0] as string;
      const unknown = await call({ ...body, NotAField: 1 });
      const wrongType = await call({ ...body, [firstKey]: { nested: true } });
      expect([method, path, unknown.status, wrongType.status]).toEqual([method, path, 400, 400]);
      expect(JSON.stringify(uip.state())).toBe(before);
      const ok = await call(body);
      expect([method, path, ok.status < 300]).toEqual([method, path, true]);
    }
  });

  it('refuses unknown or ill-typed parameters and ids', async () => {
    expect((await c.orch('GET', '/odata/Users(abc)')).status).toBe(400);
    expect((await c.orch('GET', '/odata/Users?$top=ten')).status).toBe(400);
    expect((await c.orch('GET', '/odata/Users?$bogus=1')).status).toBe(400);
    expect((await c.orch('GET', '/odata/Users?$top=1001')).status).toBe(400);
    expect((await c.orch('GET', "/odata/Users?$filter=Nope eq 'x'")).body.message).toContain("Could not find a property named 'Nope'");
    expect((await c.orch('GET', '/odata/Users?$expand=Nope')).status).toBe(400);
    expect((await c.identity('GET', '/api/User/not-a-uuid')).status).toBe(400);
    expect((await c.identity('GET', `/api/User/users/${uip.organizationId}?top=1001`)).status).toBe(400);
  });

  it('refuses unknown and ill-typed Identity properties', async () => {
    expect((await c.identity('POST', '/api/User', { email: 'a@b.c', nickname: 'a' })).status).toBe(400);
    expect((await c.identity('POST', '/api/Group', { partitionGlobalId: uip.organizationId, name: 'g', directoryUserMemberIDs: ['x'] })).status).toBe(400);
    expect((await c.identity('POST', '/api/RobotAccount', { partitionGlobalId: uip.organizationId, name: 7 })).status).toBe(400);
  });

  it('answers 404 for paths UiPath lacks, 405 for a method a path lacks, 501 for documented operations it does not implement', async () => {
    expect((await c.orch('GET', '/odata/Nope')).status).toBe(404);
    expect((await c.orch('PATCH', '/odata/Roles(1)', {})).status).toBe(405);
    const r = await c.orch('PUT', '/odata/Folders(1)/UiPath.Server.Configuration.OData.MoveFolder');
    expect(r.status).toBe(501);
    expect(r.body.message).toContain('Folders_MoveFolderByFolderid');
  });
});

describe('Orchestrator users and tenant roles', () => {
  beforeEach(() => fresh());

  it('starts with the static roles, which refuse changes and deletion', async () => {
    const r = await c.orch('GET', '/odata/Roles?$filter=IsStatic eq true&$select=Name,Type');
    expect(r.body.value.map((x: { Name: string }) => x.Name)).toEqual(
      expect.arrayContaining(['Administrator', 'Allow to be Folder Administrator', 'Folder Administrator', 'Allow to be Automation User', 'Automation User', 'Automation Developer', 'Robot']),
    );
    const admin = (await c.orch('GET', "/odata/Roles?$filter=Name eq 'Administrator'")).body.value[0];
    expect(admin).toMatchObject({ IsStatic: true, IsEditable: false });
    expect(admin.Permissions).toBeUndefined();
    expect((await c.orch('GET', `/odata/Roles(${admin.Id})?$expand=Permissions`)).body.Permissions.length).toBeGreaterThan(0);
    const put = await c.orch('PUT', `/odata/Roles(${admin.Id})`, { Name: 'Administrator', Permissions: [] });
    expect(put).toMatchObject({ status: 400, body: { errorCode: 1101 } });
    expect((await c.orch('DELETE', `/odata/Roles(${admin.Id})`)).status).toBe(400);
    expect(uip.snapshot().roles.Administrator!.permissions.length).toBeGreaterThan(0);
  });

  it('creates, edits and deletes custom roles; names are unique ignoring case; no mixed roles', async () => {
    const created = await c.orch('POST', '/odata/Roles', { Name: 'Auditor', Type: 'Tenant', Permissions: [{ Name: 'Users.View', IsGranted: true }] });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ Id: expect.any(Number), Name: 'Auditor', Type: 'Tenant', IsStatic: false, IsEditable: true });
    expect((await c.orch('POST', '/odata/Roles', { Name: 'auditor', Type: 'Tenant' })).body.errorCode).toBe(1001);
    expect((await c.orch('POST', '/odata/Roles', { Name: 'Both', Type: 'Mixed' })).status).toBe(400);
    const id = created.body.Id;
    expect((await c.orch('PUT', `/odata/Roles(${id})`, { Name: 'Auditor', Type: 'Tenant', Permissions: [{ Name: 'Roles.View', IsGranted: true }] })).status).toBe(200);
    expect(uip.snapshot().roles.Auditor!.permissions).toEqual(['Roles.View']);
    expect((await c.orch('PUT', `/odata/Roles(${id})`, { Name: 'Auditor', Type: 'Folder' })).status).toBe(400);
    expect((await c.orch('DELETE', `/odata/Roles(${id})`)).status).toBe(204);
    expect((await c.orch('GET', `/odata/Roles(${id})`)).status).toBe(404);
  });

  it('AssignRoles replaces the tenant roles; a folder role is refused at tenant level', async () => {
    const ids = uip.seed({ roles: [{ Name: 'Auditor', Type: 'Tenant' }, { Name: 'Runner', Type: 'Folder' }] }).roles;
    const u = (await c.orch('POST', '/odata/Users', { UserName: 'john@example.com', EmailAddress: 'john@example.com', RolesList: ['Administrator'] })).body;
    expect(uip.snapshot().users['john@example.com']!.roles).toEqual(['Administrator']);
    expect((await c.orch('POST', `/odata/Users(${u.Id})/${A}.AssignRoles`, { roleIds: [ids.Auditor] })).status).toBe(200);
    expect(uip.snapshot().users['john@example.com']!.roles).toEqual(['Auditor']);
    const wrong = await c.orch('POST', `/odata/Users(${u.Id})/${A}.AssignRoles`, { roleIds: [ids.Auditor, ids.Runner] });
    expect(wrong).toMatchObject({ status: 400, body: { errorCode: 1103 } });
    expect(uip.snapshot().users['john@example.com']!.roles).toEqual(['Auditor']);
    expect((await c.orch('POST', `/odata/Users(${u.Id})/${A}.AssignRoles`, { roleIds: [] })).status).toBe(200);
    expect(uip.snapshot().users['john@example.com']!.roles).toEqual([]);
    expect((await c.orch('POST', `/odata/Users(999)/${A}.AssignRoles`, { roleIds: [] })).status).toBe(404);
  });

  it('SetUsers adds and removes users of one role without touching their other roles', async () => {
    const s = uip.seed({ roles: [{ Name: 'Auditor', Type: 'Tenant' }], users: [{ UserName: 'a', roles: ['Administrator'] }, { UserName: 'b', roles: ['Auditor'] }] });
    expect((await c.orch('POST', `/odata/Roles(${s.roles.Auditor})/${A}.SetUsers`, { addedUserIds: [s.users.a], removedUserIds: [s.users.b] })).status).toBe(204);
    const snap = uip.snapshot();
    expect(snap.users.a!.roles).toEqual(['Administrator', 'Auditor']);
    expect(snap.users.b!.roles).toEqual([]);
  });

  it('users: unique names, PUT replaces, PATCH cannot change roles, DELETE forgets folder assignments', async () => {
    const u = (await c.orch('POST', '/odata/Users', { UserName: 'jo', Name: 'Jo', Surname: 'Doe', RolesList: ['Administrator'] })).body;
    expect(u).toMatchObject({ UserName: 'jo', FullName: 'Jo Doe', Type: 'User', RolesList: ['Administrator'] });
    expect((await c.orch('POST', '/odata/Users', { UserName: 'JO' })).body.errorCode).toBe(1001);
    expect((await c.orch('PATCH', `/odata/Users(${u.Id})`, { IsActive: false })).status).toBe(200);
    expect(uip.snapshot().users.jo).toMatchObject({ IsActive: false, roles: ['Administrator'] });
    expect((await c.orch('PATCH', `/odata/Users(${u.Id})`, { RolesList: [] })).status).toBe(400);
    expect((await c.orch('PUT', `/odata/Users(${u.Id})`, { UserName: 'jo', RolesList: [] })).status).toBe(200);
    expect(uip.snapshot().users.jo).toMatchObject({ roles: [] });
    expect((await c.orch('GET', `/odata/Users(${u.Id})`)).body.Name).toBeUndefined();
    uip.seed({ folders: ['F'], folderRoles: [{ user: 'jo', folder: 'F', roles: ['Automation User'] }] });
    expect((await c.orch('DELETE', `/odata/Users(${u.Id})`)).status).toBe(204);
    expect(uip.snapshot().folderRoles).toEqual({});
    expect((await c.orch('GET', `/odata/Users(${u.Id})`)).status).toBe(404);
  });

  it('directory users, groups and robots link to Identity objects, found by identifier or name', async () => {
    uip.seed({ identityUsers: [{ email: 'ann@example.com' }], groups: [{ name: 'finance-ops', members: ['ann@example.com'] }], robotAccounts: [{ name: 'bot1' }] });
    const st = uip.state();
    const annId = st.identity.users[0]!.id as string;
    const ann = await c.orch('POST', '/odata/Users', { UserName: 'ann@example.com', Type: 'DirectoryUser', DirectoryIdentifier: annId });
    expect(ann.body).toMatchObject({ Key: annId, EmailAddress: 'ann@example.com', Type: 'DirectoryUser' });
    expect((await c.orch('POST', '/odata/Users', { UserName: 'finance-ops', Type: 'DirectoryGroup' })).status).toBe(201);
    expect((await c.orch('POST', '/odata/Users', { UserName: 'bot1', Type: 'DirectoryRobot' })).status).toBe(201);
    expect((await c.orch('POST', '/odata/Users', { UserName: 'ghost', Type: 'DirectoryGroup' })).status).toBe(400);
    expect((await c.orch('POST', '/odata/Users', { UserName: 'ann2', Type: 'DirectoryUser', DirectoryIdentifier: annId })).status).toBe(409);
    // Deleting the Identity user removes its Orchestrator entry.
    expect((await c.identity('DELETE', `/api/User/${annId}`)).status).toBe(204);
    expect(Object.keys(uip.snapshot().users).sort()).toEqual(['bot1', 'finance-ops']);
  });
});

describe('folders and folder assignments', () => {
  beforeEach(() => fresh());

  it('creates folders under parents with unique sibling names; has the default Shared folder', async () => {
    const fin = (await c.orch('POST', '/odata/Folders', { DisplayName: 'Finance' })).body;
    const ap = await c.orch('POST', '/odata/Folders', { DisplayName: 'AP', ParentId: fin.Id });
    expect(ap.body).toMatchObject({ FullyQualifiedName: 'Finance/AP', ParentId: fin.Id, ParentKey: fin.Key });
    expect((await c.orch('POST', '/odata/Folders', { DisplayName: 'ap', ParentId: fin.Id })).body.errorCode).toBe(1001);
    expect((await c.orch('POST', '/odata/Folders', { DisplayName: 'AP' })).status).toBe(201);
    expect((await c.orch('POST', '/odata/Folders', { DisplayName: 'a/b' })).status).toBe(400);
    expect((await c.orch('POST', '/odata/Folders', { DisplayName: 'X', ParentId: 999 })).status).toBe(400);
    const byPath = await c.orch('GET', "/odata/Folders?$filter=FullyQualifiedName eq 'finance/ap'");
    expect(byPath.body.value.map((f: { Id: number }) => f.Id)).toEqual([ap.body.Id]);
    expect(uip.snapshot().folders).toEqual(['AP', 'Finance', 'Finance/AP', 'Shared']);
  });

  it('AssignUsers replaces the roles of each (user, folder) pair named, and only those', async () => {
    const s = uip.seed({
      folders: ['Finance', 'HR'],
      users: [{ UserName: 'a' }, { UserName: 'b' }],
      folderRoles: [{ user: 'a', folder: 'HR', roles: ['Automation User'] }],
    });
    const role = (n: string): number => (uip.tenant().roleByName(n).Id);
    const assign = (users: number[], folder: number, roles: string[]): Promise<Reply> =>
      c.orch('POST', `/odata/Folders/${A}.AssignUsers`, { assignments: { UserIds: users, RolesPerFolder: [{ FolderId: folder, RoleIds: roles.map(role) }] } });
    expect((await assign([s.users.a!, s.users.b!], s.folders.Finance!, ['Automation User', 'Automation Developer'])).status).toBe(204);
    expect((await assign([s.users.a!], s.folders.Finance!, ['Folder Administrator'])).status).toBe(204);
    expect(uip.snapshot().folderRoles).toEqual({
      Finance: { a: ['Folder Administrator'], b: ['Automation Developer', 'Automation User'] },
      HR: { a: ['Automation User'] },
    });
    const tenantRole = await assign([s.users.a!], s.folders.Finance!, ['Allow to be Automation User']);
    expect(tenantRole).toMatchObject({ status: 400, body: { errorCode: 1103 } });
    expect((await assign([s.users.a!], 999, [])).status).toBe(400);
    expect(uip.snapshot().folderRoles.Finance!.a).toEqual(['Folder Administrator']);
    expect((await c.orch('POST', `/odata/Folders(${s.folders.Finance})/${A}.RemoveUserFromFolder`, { userId: s.users.a })).status).toBe(204);
    expect(uip.snapshot().folderRoles.Finance).toEqual({ b: ['Automation Developer', 'Automation User'] });
  });

  it('refuses to delete a folder while it or a descendant holds user associations, then deletes the subtree', async () => {
    const s = uip.seed({ folders: ['Finance/AP/Invoices'], users: [{ UserName: 'a' }], folderRoles: [{ user: 'a', folder: 'Finance/AP/Invoices', roles: ['Automation User'] }] });
    const del = await c.orch('DELETE', `/odata/Folders(${s.folders.Finance})`);
    expect(del.status).toBe(409);
    expect(del.body.message).toContain('Finance/AP/Invoices');
    await c.orch('POST', `/odata/Folders(${s.folders['Finance/AP/Invoices']})/${A}.RemoveUserFromFolder`, { userId: s.users.a });
    expect((await c.orch('DELETE', `/odata/Folders(${s.folders.Finance})`)).status).toBe(204);
    expect(uip.snapshot().folders).toEqual(['Shared']);
  });

  it('GetUsersForFolder lists direct and (optionally) inherited roles; GetAllRolesForUser pages folders incl. group ones', async () => {
    uip.seed({ identityUsers: [{ email: 'ann@example.com' }], groups: [{ name: 'ops', members: ['ann@example.com'] }] });
    const s = uip.seed({
      folders: ['Finance/AP', 'HR'],
      users: [{ UserName: 'ann@example.com', Type: 'DirectoryUser', roles: ['Allow to be Automation User'] }, { UserName: 'ops', Type: 'DirectoryGroup' }],
      folderRoles: [
        { user: 'ann@example.com', folder: 'Finance', roles: ['Automation User'] },
        { user: 'ops', folder: 'HR', roles: ['Automation Developer'] },
      ],
    });
    const direct = await c.orch('GET', `/odata/Folders/${A}.GetUsersForFolder(key=${s.folders['Finance/AP']},includeInherited=false)`);
    expect(direct.body.value).toEqual([]);
    const inherited = await c.orch('GET', `/odata/Folders/${A}.GetUsersForFolder(key=${s.folders['Finance/AP']},includeInherited=true)?$count=true`);
    expect(inherited.body['@odata.count']).toBe(1);
    expect(inherited.body.value[0]).toMatchObject({
      UserEntity: { UserName: 'ann@example.com', IsInherited: true, AssignedToFolderIds: [s.folders.Finance] },
      Roles: [{ Name: 'Automation User', Origin: 'Inherited', InheritedFromFolder: { FullyQualifiedName: 'Finance' } }],
    });
    const all = await c.orch('GET', `/odata/Folders/${A}.GetAllRolesForUser(username='ann@example.com',skip=0,take=1)`);
    expect(all.body).toMatchObject({ Count: 2, TenantRoles: [{ Name: 'Allow to be Automation User' }], PageItems: [{ Folder: { FullyQualifiedName: 'Finance' } }] });
    const page2 = await c.orch('GET', `/odata/Folders/${A}.GetAllRolesForUser(username='ann@example.com',skip=1,take=1)`);
    expect(page2.body.PageItems).toEqual([
      { Folder: expect.objectContaining({ FullyQualifiedName: 'HR' }), Roles: [{ Id: expect.any(Number), Name: 'Automation Developer', Users: [expect.objectContaining({ UserName: 'ops', IsInherited: true })] }] },
    ]);
    expect((await c.orch('GET', `/odata/Folders/${A}.GetAllRolesForUser(username='ops',skip=0,take=10)?type=Group`)).body.Count).toBe(1);
  });

  it('renames a folder with PUT; moving is not a PUT', async () => {
    const s = uip.seed({ folders: ['Finance/AP', 'HR'] });
    const put = await c.orch('PUT', `/odata/Folders(${s.folders['Finance/AP']})`, { DisplayName: 'Payables', Description: 'AP' });
    expect(put.body).toMatchObject({ FullyQualifiedName: 'Finance/Payables', Description: 'AP' });
    expect((await c.orch('PUT', `/odata/Folders(${s.folders['Finance/AP']})`, { DisplayName: 'X', ParentId: s.folders.HR })).status).toBe(400);
    expect((await c.orch('PUT', `/odata/Folders(${s.folders.HR})`, { DisplayName: 'finance' })).body.errorCode).toBe(1001);
  });

  it('an application restricted to some folders gets 403 naming any other folder it touches', async () => {
    const s = uip.seed({ folders: ['Finance/AP', 'HR'], users: [{ UserName: 'a' }] });
    uip.setApplicationFolders(['Finance']);
    const au = uip.tenant().roleByName('Automation User').Id;
    const assign = (folder: number): Promise<Reply> =>
      c.orch('POST', `/odata/Folders/${A}.AssignUsers`, { assignments: { UserIds: [s.users.a], RolesPerFolder: [{ FolderId: folder, RoleIds: [au] }] } });
    expect((await assign(s.folders['Finance/AP']!)).status).toBe(204);
    const denied = await assign(s.folders.HR!);
    expect(denied.status).toBe(403);
    expect(denied.body.message).toContain("folder 'HR'");
    expect((await c.orch('GET', '/odata/Users', undefined, { 'X-UIPATH-OrganizationUnitId': String(s.folders.HR) })).status).toBe(403);
    expect((await c.orch('GET', `/odata/Folders/${A}.GetUsersForFolder(key=${s.folders.HR},includeInherited=false)`)).status).toBe(403);
    expect((await c.orch('POST', '/odata/Folders', { DisplayName: 'Sub', ParentId: s.folders.HR })).status).toBe(403);
    expect((await c.orch('DELETE', `/odata/Folders(${s.folders.HR})`)).status).toBe(403);
    uip.setApplicationFolders('all');
    expect((await assign(s.folders.HR!)).status).toBe(204);
  });

  it('checks X-UIPATH-OrganizationUnitId names a folder of the tenant', async () => {
    expect((await c.orch('GET', '/odata/Users', undefined, { 'X-UIPATH-OrganizationUnitId': '1' })).status).toBe(200);
    expect((await c.orch('GET', '/odata/Users', undefined, { 'X-UIPATH-OrganizationUnitId': '999' })).status).toBe(400);
    expect((await c.orch('GET', '/odata/Users', undefined, { 'X-UIPATH-OrganizationUnitId': 'Shared' })).status).toBe(400);
  });
});

describe('OData paging and filters', () => {
  beforeEach(() => fresh({ maxPageSize: 50 }));

  it('pages with $top/$skip, counts with $count, and cuts long pages at the server page size', async () => {
    uip.seed({ users: Array.from({ length: 120 }, (_, i) => ({ UserName: `user${String(i).padStart(3, '0')}@example.com`, EmailAddress: `user${String(i).padStart(3, '0')}@example.com` })) });
    const p = await c.orch('GET', '/odata/Users?$top=10&$skip=20&$count=true&$orderby=UserName desc');
    expect(p.body['@odata.count']).toBe(120);
    expect(p.body['@odata.context']).toContain('$metadata#Users');
    expect(p.body.value.map((u: { UserName: string }) => u.UserName)[0]).toBe('user099@example.com');
    const cut = await c.orch('GET', '/odata/Users?$top=100');
    expect(cut.body.value).toHaveLength(50);
    expect(cut.body['@odata.nextLink']).toMatch(/\/odata\/Users\?\$top=50&\$skip=50$/);
    const rest = await c.raw('GET', cut.body['@odata.nextLink']);
    expect(rest.body.value).toHaveLength(50);
    expect(rest.body['@odata.nextLink']).toBeUndefined();
    const all: unknown[] = [];
    for (let skip = 0; ; skip += 50) {
      const page = await c.orch('GET', `/odata/Users?$top=50&$skip=${skip}`);
      all.push(...page.body.value);
      if (page.body.value.length < 50) break;
    }
    expect(all).toHaveLength(120);
  });

  it('filters with eq (ignoring case), and/or, in, contains, tolower; $select projects', async () => {
    uip.seed({ users: [{ UserName: 'John.Smith@example.com', EmailAddress: 'John.Smith@example.com' }, { UserName: 'jane@example.com', EmailAddress: 'jane@example.com', IsActive: false }] });
    const get = async (q: string): Promise<string[]> => (await c.orch('GET', `/odata/Users?${q}`)).body.value.map((u: { UserName: string }) => u.UserName);
    expect(await get("$filter=EmailAddress eq 'john.smith@example.com'")).toEqual(['John.Smith@example.com']);
    expect(await get("$filter=tolower(UserName) eq 'jane@example.com' and IsActive eq false")).toEqual(['jane@example.com']);
    expect(await get("$filter=contains(UserName,'SMITH') or UserName eq 'nobody'")).toEqual(['John.Smith@example.com']);
    expect(await get("$filter=UserName in ('jane@example.com','x')")).toEqual(['jane@example.com']);
    const sel = await c.orch('GET', '/odata/Users?$select=Id,UserName&$top=1');
    expect(Object.keys(sel.body.value[0]).sort()).toEqual(['Id', 'UserName']);
    expect((await c.orch('GET', "/odata/Users?$filter=UserName eq 'unterminated")).status).toBe(400);
  });

  it('filters with not, ne null, numeric comparisons, quotes doubled, and nested paths', async () => {
    uip.seed({ users: [{ UserName: "o'brien", EmailAddress: 'ob@example.com' }, { UserName: 'noemail' }, { UserName: 'third', EmailAddress: 't@example.com' }] });
    const get = async (q: string): Promise<string[]> => (await c.orch('GET', `/odata/Users?${encodeURI(q)}`)).body.value.map((u: { UserName: string }) => u.UserName);
    expect(await get("$filter=UserName eq 'o''brien'")).toEqual(["o'brien"]);
    expect(await get('$filter=EmailAddress eq null')).toEqual(['noemail']);
    expect(await get("$filter=not (EmailAddress eq null) and Id gt 1")).toEqual(['third']);
    expect(await get('$filter=Id ge 2 and Id le 2')).toEqual(['noemail']);
    expect(await get("$filter=startswith(UserName,'O') or endswith(UserName,'ird')")).toEqual(["o'brien", 'third']);
    const s = uip.seed({ folders: ['A/B'], folderRoles: [{ user: 'third', folder: 'A', roles: ['Automation User'] }] });
    const rows = await c.orch('GET', `/odata/Folders/${A}.GetUsersForFolder(key=${s.folders.A},includeInherited=false)?$filter=${encodeURIComponent("UserEntity/UserName eq 'THIRD'")}`);
    expect(rows.body.value).toHaveLength(1);
    expect((await c.orch('GET', `/odata/Folders/${A}.GetUsersForFolder(key=${s.folders.A},includeInherited=false)?$filter=${encodeURIComponent("UserEntity/Nope eq 1")}`)).status).toBe(400);
    expect((await c.orch('GET', `/odata/Users?$orderby=${encodeURIComponent('UserName desc, Id')}&$top=1`)).body.value[0].UserName).toBe('third');
    expect((await c.orch('GET', '/odata/Users?$orderby=Nope')).status).toBe(400);
    expect((await c.orch('GET', '/odata/Users?$filter=UserName eq')).status).toBe(400);
    expect((await c.orch('GET', "/odata/Users?$filter=length(UserName) eq 5")).status).toBe(400);
  });
});

describe('Identity', () => {
  beforeEach(() => fresh());
  const org = (): string => uip.organizationId;

  it('users: create answers IdentityResult, duplicates are IdentityResult errors, paging defaults to 10', async () => {
    for (let i = 0; i < 12; i++) expect((await c.identity('POST', '/api/User', { email: `u${i}@example.com`, name: `U${i}` })).body).toEqual({ succeeded: true, errors: [] });
    const dup = await c.identity('POST', '/api/User', { email: 'U1@example.com' });
    expect(dup).toMatchObject({ status: 400, body: { succeeded: false, errors: [{ code: 'DuplicateUserName' }] } });
    const page = await c.identity('GET', `/api/User/users/${org()}`);
    expect(page.body.totalCount).toBe(12);
    expect(page.body.results).toHaveLength(10);
    const found = await c.identity('GET', `/api/User/users/${org()}?searchTerm=u11@&top=100`);
    expect(found.body.results.map((u: { email: string }) => u.email)).toEqual(['u11@example.com']);
    const id = found.body.results[0].id;
    expect((await c.identity('PUT', `/api/User/${id}`, { isActive: false })).body.succeeded).toBe(true);
    expect((await c.identity('GET', `/api/User/${id}`)).body.isActive).toBe(false);
    expect((await c.identity('GET', `/api/User/users/${'0'.repeat(8)}-0000-0000-0000-${'0'.repeat(12)}`)).status).toBe(404);
  });

  it('groups: built-ins exist and refuse deletion; custom groups carry members, updated by add/remove lists', async () => {
    uip.seed({ identityUsers: [{ email: 'a@example.com' }, { email: 'b@example.com' }], robotAccounts: [{ name: 'bot' }] });
    const ids = Object.fromEntries(uip.state().identity.users.map((u) => [u.email, u.id as string]));
    const groups = await c.identity('GET', `/api/Group/${org()}`);
    expect(groups.body.map((g: { name: string }) => g.name)).toEqual(expect.arrayContaining(['Administrators', 'Everyone']));
    const everyone = groups.body.find((g: { name: string }) => g.name === 'Everyone');
    expect((await c.identity('DELETE', `/api/Group/${org()}/${everyone.id}`)).status).toBe(400);
    const created = await c.identity('POST', '/api/Group', { partitionGlobalId: org(), name: 'finance-ops', directoryUserMemberIDs: [ids['a@example.com']] });
    expect(created.status).toBe(201);
    expect((await c.identity('POST', '/api/Group', { partitionGlobalId: org(), name: 'FINANCE-OPS' })).status).toBe(409);
    const robotId = uip.state().identity.robotAccounts[0]!.id as string;
    const upd = await c.identity('PUT', `/api/Group/${created.body.id}`, { partitionGlobalId: org(), directoryUserIDsToAdd: [ids['b@example.com'], robotId], directoryUserIDsToRemove: [ids['a@example.com']] });
    expect(upd.status).toBe(200);
    expect(uip.snapshot().groups['finance-ops']).toEqual(['b@example.com', 'bot']);
    const one = await c.identity('GET', `/api/Group/${org()}/${created.body.id}`);
    expect(one.body.members.map((m: { objectType: string }) => m.objectType).sort()).toEqual(['DirectoryRobotUser', 'DirectoryUser']);
    expect((await c.identity('GET', `/api/User/${ids['b@example.com']}`)).body.groupIDs).toEqual([created.body.id]);
    expect((await c.identity('DELETE', `/api/Group/${org()}/${created.body.id}`)).status).toBe(204);
    expect(uip.snapshot().groups['finance-ops']).toBeUndefined();
  });

  it('robot accounts: create, list, update groups, delete', async () => {
    const g = uip.seed({ groups: [{ name: 'robots' }] }).groups.robots!;
    const r = await c.identity('POST', '/api/RobotAccount', { partitionGlobalId: org(), name: 'invoice-bot', displayName: 'Invoice bot', groupIDsToAdd: [g] });
    expect(r).toMatchObject({ status: 201, body: { name: 'invoice-bot', groupIds: [g] } });
    expect((await c.identity('POST', '/api/RobotAccount', { partitionGlobalId: org(), name: 'invoice-bot' })).status).toBe(409);
    const list = await c.identity('GET', `/api/RobotAccount/${org()}?top=100`);
    expect(list.body).toMatchObject({ totalCount: 1, results: [{ name: 'invoice-bot' }] });
    expect((await c.identity('PUT', `/api/RobotAccount/${r.body.id}`, { groupIDsToRemove: [g] })).body.groupIds).toEqual([]);
    expect((await c.identity('DELETE', `/api/RobotAccount/${org()}/${r.body.id}`)).status).toBe(204);
    expect(uip.snapshot().robotAccounts).toEqual([]);
  });

  it('refuses another partition: 404 in the path, 400 in a body; checks scopes per API', async () => {
    const other = '00000000-0000-0000-0000-000000000001';
    expect((await c.identity('GET', `/api/Group/${other}`)).status).toBe(404);
    expect((await c.identity('POST', '/api/Group', { partitionGlobalId: other, name: 'g' })).status).toBe(400);
    expect((await c.identity('POST', '/api/RobotAccount', { partitionGlobalId: other, name: 'r' })).status).toBe(400);
    expect(uip.snapshot().groups.g).toBeUndefined();
    await c.login('PM.User');
    expect((await c.identity('GET', `/api/User/users/${org()}`)).status).toBe(200);
    const denied = await c.identity('GET', `/api/Group/${org()}`);
    expect(denied.status).toBe(403);
    expect(denied.body).toMatchObject({ status: 403, title: expect.stringContaining('PM.Group') });
  });

  it('answers at the org-scoped and the standalone Identity addresses too', async () => {
    expect((await c.raw('GET', `${uip.url}/${uip.organizationName}/identity_/api/Group/${org()}`)).status).toBe(200);
    expect((await c.raw('GET', `${uip.standaloneIdentityUrl}/api/Group/${org()}`)).status).toBe(200);
  });
});

describe('options', () => {
  it('can report local users as DirectoryUser (Orchestrator since 21.10)', async () => {
    await fresh({ localUsersAsDirectoryUsers: true, sharedFolder: false });
    uip.seed({ users: [{ UserName: 'local' }] });
    expect((await c.orch('GET', '/odata/Users')).body.value[0].Type).toBe('DirectoryUser');
    expect(uip.snapshot().folders).toEqual([]);
  });
});

describe('tenants and addresses', () => {
  it('keeps tenants apart; the first also answers at the root (standalone style)', async () => {
    await fresh({ tenants: ['finance', 'hr'] });
    uip.seed({ users: [{ UserName: 'a' }] }, 'finance');
    uip.seed({ users: [{ UserName: 'b' }] }, 'hr');
    const names = async (url: string): Promise<string[]> => (await c.raw('GET', url)).body.value.map((u: { UserName: string }) => u.UserName);
    expect(await names(`${uip.orchestratorUrl('finance')}/odata/Users`)).toEqual(['a']);
    expect(await names(`${uip.orchestratorUrl('hr')}/odata/Users`)).toEqual(['b']);
    expect(await names(`${uip.url}/odata/Users`)).toEqual(['a']);
    expect((await c.raw('GET', `${uip.url}/acme/nope/orchestrator_/odata/Users`)).status).toBe(404);
  });
});

describe('control API: call log and faults', () => {
  beforeEach(() => fresh());

  it('counts calls per operation, reads and writes', async () => {
    uip.calls.reset();
    await c.orch('GET', '/odata/Users');
    await c.orch('GET', '/odata/Users?$top=1');
    await c.orch('POST', '/odata/Folders', { DisplayName: 'F' });
    await c.orch('GET', '/odata/Users(1)');
    expect(uip.calls.counts()).toEqual({ 'GET /odata/Users': 2, 'POST /odata/Folders': 1, 'GET /odata/Users({key})': 1 });
    expect(uip.calls.count('Users_Get')).toBe(2);
    expect(uip.calls.reads()).toBe(3);
    expect(uip.calls.writes()).toBe(1);
    expect(uip.calls.list()[3]).toMatchObject({ operationId: 'Users_GetById', status: 404, tenant: 'DefaultTenant' });
    expect(uip.calls.list()[2]).toMatchObject({ operationId: 'Folders_Post', status: 201, body: { DisplayName: 'F' } });
    await c.login();
    expect(JSON.stringify(uip.calls.list())).not.toContain(uip.credentials.clientSecret);
  });

  it('answers 429 with Retry-After for the next N matching calls, then recovers', async () => {
    uip.faults.rateLimit({ calls: 2, retryAfterSeconds: 7, match: 'Users_Get' });
    const first = await c.orch('GET', '/odata/Users');
    expect(first.status).toBe(429);
    expect(first.headers.get('retry-after')).toBe('7');
    expect((await c.orch('GET', '/odata/Roles')).status).toBe(200);
    expect((await c.orch('GET', '/odata/Users')).status).toBe(429);
    expect((await c.orch('GET', '/odata/Users')).status).toBe(200);
    expect(uip.calls.count((r) => r.fault === 'rate-limit')).toBe(2);
  });

  it('answers 503 on demand, and drops connections or answers 503 during an outage', async () => {
    uip.faults.unavailable({ match: /^POST /, retryAfterSeconds: 2 });
    expect((await c.orch('GET', '/odata/Users')).status).toBe(200);
    const u = await c.orch('POST', '/odata/Folders', { DisplayName: 'F' });
    expect(u.status).toBe(503);
    expect(u.headers.get('retry-after')).toBe('2');
    uip.faults.outage(true);
    await expect(c.orch('GET', '/odata/Users')).rejects.toThrow();
    await expect(c.login()).rejects.toThrow();
    uip.faults.outage(true, '503');
    expect((await c.orch('GET', '/odata/Users')).status).toBe(503);
    uip.faults.outage(false);
    expect((await c.orch('GET', '/odata/Users')).status).toBe(200);
  });

  it('rate-limits a path until cleared', async () => {
    uip.faults.rateLimit({ calls: Infinity, match: '/odata/Roles' });
    for (let i = 0; i < 3; i++) expect((await c.orch('GET', '/odata/Roles')).status).toBe(429);
    expect((await c.orch('GET', '/odata/Users')).status).toBe(200);
    uip.faults.clear();
    expect((await c.orch('GET', '/odata/Roles')).status).toBe(200);
  });

  it('fails loudly when its own response breaks the vendor schema: 500, defects(), stop() rejects', async () => {
    const tenant = uip.tenant();
    const original = tenant.userDto.bind(tenant);
    tenant.userDto = (u, expand) => ({ ...original(u, expand), Bogus: true });
    uip.seed({ users: [{ UserName: 'a' }] });
    const r = await c.orch('GET', '/odata/Users');
    expect(r.status).toBe(500);
    expect(uip.defects()).toEqual([expect.stringContaining("Users_Get: the double's 200 response does not match the document")]);
    await expect(uip.stop()).rejects.toThrow(/invalid responses/);
    uip = await startUiPathDouble(); // for afterEach
  });

  it('adds latency to every call', async () => {
    uip.faults.latency(120);
    const t = Date.now();
    await c.orch('GET', '/odata/Users');
    expect(Date.now() - t).toBeGreaterThanOrEqual(110);
    uip.faults.clear();
  });
});
