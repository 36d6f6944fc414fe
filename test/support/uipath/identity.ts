/**
 * Identity (organization level): local users, groups and robot accounts of one organization
 * (partition), with the rules UiPath states for them. The HTTP layer validates shapes against the
 * vendor's schemas before anything here runs; this module holds the semantics, and is also what
 * the control API seeds through, so seeded and HTTP-made objects obey the same rules.
 */
import { randomUUID } from 'node:crypto';
import { ApiError, badRequest, nameTaken, notFound } from './errors.js';

export type IdentityUserType = 'user' | 'robot' | 'directoryUser' | 'directoryGroup' | 'robotAccount' | 'application';

export interface IdentityUser {
  id: string;
  userName: string;
  email?: string;
  name?: string;
  surname?: string;
  displayName?: string;
  isActive: boolean;
  type: IdentityUserType;
  legacyId: number;
  creationTime: string;
  lastModificationTime?: string;
}

export interface IdentityGroup {
  id: string;
  name: string;
  type: 'builtIn' | 'custom';
  creationTime: string;
  lastModificationTime?: string;
  /** Ids of member users and robot accounts. */
  members: Set<string>;
}

export interface RobotAccount {
  id: string;
  name: string;
  displayName?: string;
  creationTime: string;
}

/** Identity's built-in groups of a new organization. */
export const BUILT_IN_GROUPS = ['Administrators', 'Automation Developers', 'Automation Users', 'Everyone'] as const;

const lower = (s: string): string => s.toLowerCase();

/** The IdentityResult error Identity answers for a refused user command. */
const identityError = (code: string, description: string, status = 400): ApiError => new ApiError(status, 1000, description, code);

export interface CreateUserInput {
  id?: string | null;
  userName?: string | null;
  email?: string | null;
  name?: string | null;
  surname?: string | null;
  displayName?: string | null;
  type?: IdentityUserType;
  partitionGlobalId?: string;
  groupIDs?: string[] | null;
}

export interface UpdateUserInput {
  name?: string | null;
  surname?: string | null;
  displayName?: string | null;
  email?: string | null;
  isActive?: boolean | null;
  groupIDsToAdd?: string[] | null;
  groupIDsToRemove?: string[] | null;
}

export class Identity {
  readonly users = new Map<string, IdentityUser>();
  readonly groups = new Map<string, IdentityGroup>();
  readonly robotAccounts = new Map<string, RobotAccount>();
  private nextLegacyId = 1;
  /** Called when a user, group or robot account is deleted (Orchestrator forgets it too). */
  onDelete: (id: string) => void = () => undefined;

  constructor(
    readonly organizationId: string,
    private readonly now: () => string,
  ) {
    for (const name of BUILT_IN_GROUPS) {
      const id = randomUUID();
      this.groups.set(id, { id, name, type: 'builtIn', creationTime: now(), members: new Set() });
    }
  }

  checkPartition(partitionGlobalId: string | undefined | null, where: string): void {
    if (partitionGlobalId !== undefined && partitionGlobalId !== null && lower(partitionGlobalId) !== this.organizationId) {
      throw new ApiError(where === 'path' ? 404 : 400, 1000, `Partition ${partitionGlobalId} does not exist or is not the caller's.`);
    }
  }

  // ---- users -------------------------------------------------------------------------------

  user(id: string): IdentityUser {
    const u = this.users.get(lower(id));
    if (!u) throw notFound('User', id);
    return u;
  }

  findUser(nameOrEmail: string): IdentityUser | undefined {
    const k = lower(nameOrEmail);
    for (const u of this.users.values()) if (lower(u.userName) === k || (u.email && lower(u.email) === k)) return u;
    return undefined;
  }

  createUser(cmd: CreateUserInput): IdentityUser {
    this.checkPartition(cmd.partitionGlobalId, 'body');
    const type = cmd.type ?? 'user';
    if (type !== 'user') throw identityError('InvalidUserType', `The double creates local users of type 'user' only, not '${type}'.`);
    const email = cmd.email ?? undefined;
    const userName = cmd.userName ?? email;
    if (!userName) throw identityError('InvalidUserName', 'A user needs a userName or an email.');
    if (!email) throw identityError('InvalidEmail', 'A local user needs an email address.');
    if (this.findUser(userName)) throw identityError('DuplicateUserName', `User name '${userName}' is already taken.`);
    if (this.findUser(email)) throw identityError('DuplicateEmail', `Email '${email}' is already taken.`);
    const id = lower(cmd.id ?? randomUUID());
    if (this.users.has(id) || this.groups.has(id) || this.robotAccounts.has(id)) throw identityError('DuplicateId', `Id ${id} is already used.`);
    const groupIds = (cmd.groupIDs ?? []).map((g) => this.group(g, 400).id);
    const user: IdentityUser = {
      id,
      userName,
      email,
      name: cmd.name ?? undefined,
      surname: cmd.surname ?? undefined,
      displayName: cmd.displayName ?? undefined,
      isActive: true,
      type,
      legacyId: this.nextLegacyId++,
      creationTime: this.now(),
    };
    this.users.set(id, user);
    for (const g of groupIds) this.groups.get(g)?.members.add(id);
    return user;
  }

  updateUser(id: string, cmd: UpdateUserInput): IdentityUser {
    const user = this.user(id);
    const toAdd = (cmd.groupIDsToAdd ?? []).map((g) => this.group(g, 400).id);
    const toRemove = (cmd.groupIDsToRemove ?? []).map((g) => this.group(g, 400).id);
    if (cmd.email !== undefined && cmd.email !== null) {
      const other = this.findUser(cmd.email);
      if (other && other.id !== user.id) throw identityError('DuplicateEmail', `Email '${cmd.email}' is already taken.`);
      user.email = cmd.email;
    }
    if (cmd.name !== undefined) user.name = cmd.name ?? undefined;
    if (cmd.surname !== undefined) user.surname = cmd.surname ?? undefined;
    if (cmd.displayName !== undefined) user.displayName = cmd.displayName ?? undefined;
    if (cmd.isActive !== undefined && cmd.isActive !== null) user.isActive = cmd.isActive;
    for (const g of toAdd) this.groups.get(g)?.members.add(user.id);
    for (const g of toRemove) this.groups.get(g)?.members.delete(user.id);
    user.lastModificationTime = this.now();
    return user;
  }

  deleteUser(id: string): void {
    const user = this.user(id);
    this.users.delete(user.id);
    for (const g of this.groups.values()) g.members.delete(user.id);
    this.onDelete(user.id);
  }

  groupIdsOf(memberId: string): string[] {
    return [...this.groups.values()].filter((g) => g.members.has(memberId)).map((g) => g.id);
  }

  // ---- groups ------------------------------------------------------------------------------

  group(id: string, status = 404): IdentityGroup {
    const g = this.groups.get(lower(id));
    if (!g) throw status === 404 ? notFound('Group', id) : badRequest(`Group ${id} does not exist.`);
    return g;
  }

  findGroup(name: string): IdentityGroup | undefined {
    return [...this.groups.values()].find((g) => lower(g.name) === lower(name));
  }

  private member(id: string): string {
    const k = lower(id);
    if (!this.users.has(k) && !this.robotAccounts.has(k)) throw badRequest(`Directory user ${id} does not exist.`);
    return k;
  }

  createGroup(cmd: { partitionGlobalId?: string; id?: string; name?: string | null; directoryUserMemberIDs?: string[] | null }): IdentityGroup {
    if (cmd.partitionGlobalId === undefined) throw badRequest('partitionGlobalId is required.');
    this.checkPartition(cmd.partitionGlobalId, 'body');
    const name = cmd.name?.trim();
    if (!name) throw badRequest('The group name is required.');
    if (this.findGroup(name)) throw nameTaken(name);
    const members = (cmd.directoryUserMemberIDs ?? []).map((m) => this.member(m));
    const id = lower(cmd.id ?? randomUUID());
    if (this.groups.has(id) || this.users.has(id) || this.robotAccounts.has(id)) throw badRequest(`Id ${id} is already used.`);
    const group: IdentityGroup = { id, name, type: 'custom', creationTime: this.now(), members: new Set(members) };
    this.groups.set(id, group);
    return group;
  }

  updateGroup(
    id: string,
    cmd: { partitionGlobalId?: string; name?: string | null; directoryUserIDsToAdd?: string[] | null; directoryUserIDsToRemove?: string[] | null },
  ): IdentityGroup {
    this.checkPartition(cmd.partitionGlobalId, 'body');
    const group = this.group(id);
    const toAdd = (cmd.directoryUserIDsToAdd ?? []).map((m) => this.member(m));
    const toRemove = (cmd.directoryUserIDsToRemove ?? []).map((m) => this.member(m));
    if (cmd.name !== undefined && cmd.name !== null && cmd.name !== group.name) {
      if (group.type === 'builtIn') throw badRequest(`The built-in group ${group.name} cannot be renamed.`);
      if (!cmd.name.trim()) throw badRequest('The group name is required.');
      const other = this.findGroup(cmd.name);
      if (other && other.id !== group.id) throw nameTaken(cmd.name);
      group.name = cmd.name.trim();
    }
    for (const m of toAdd) group.members.add(m);
    for (const m of toRemove) group.members.delete(m);
    group.lastModificationTime = this.now();
    return group;
  }

  deleteGroup(id: string): void {
    const group = this.group(id);
    if (group.type === 'builtIn') throw badRequest(`The built-in group ${group.name} cannot be deleted.`);
    this.groups.delete(group.id);
    this.onDelete(group.id);
  }

  // ---- robot accounts ----------------------------------------------------------------------

  robotAccount(id: string): RobotAccount {
    const r = this.robotAccounts.get(lower(id));
    if (!r) throw notFound('Robot account', id);
    return r;
  }

  findRobotAccount(name: string): RobotAccount | undefined {
    return [...this.robotAccounts.values()].find((r) => lower(r.name) === lower(name));
  }

  createRobotAccount(cmd: { partitionGlobalId?: string; name?: string | null; displayName?: string | null; groupIDsToAdd?: string[] | null }): RobotAccount {
    if (cmd.partitionGlobalId === undefined) throw badRequest('partitionGlobalId is required.');
    this.checkPartition(cmd.partitionGlobalId, 'body');
    const name = cmd.name?.trim();
    if (!name) throw badRequest('The robot account name is required.');
    if (this.findRobotAccount(name) || this.findUser(name)) throw nameTaken(name);
    const groups = (cmd.groupIDsToAdd ?? []).map((g) => this.group(g, 400).id);
    const robot: RobotAccount = { id: randomUUID(), name, displayName: cmd.displayName ?? name, creationTime: this.now() };
    this.robotAccounts.set(robot.id, robot);
    for (const g of groups) this.groups.get(g)?.members.add(robot.id);
    return robot;
  }

  updateRobotAccount(
    id: string,
    cmd: { partitionGlobalId?: string; displayName?: string | null; groupIDsToAdd?: string[] | null; groupIDsToRemove?: string[] | null },
  ): RobotAccount {
    this.checkPartition(cmd.partitionGlobalId, 'body');
    const robot = this.robotAccount(id);
    const toAdd = (cmd.groupIDsToAdd ?? []).map((g) => this.group(g, 400).id);
    const toRemove = (cmd.groupIDsToRemove ?? []).map((g) => this.group(g, 400).id);
    if (cmd.displayName !== undefined && cmd.displayName !== null) robot.displayName = cmd.displayName;
    for (const g of toAdd) this.groups.get(g)?.members.add(robot.id);
    for (const g of toRemove) this.groups.get(g)?.members.delete(robot.id);
    return robot;
  }

  deleteRobotAccount(id: string): void {
    const robot = this.robotAccount(id);
    this.robotAccounts.delete(robot.id);
    for (const g of this.groups.values()) g.members.delete(robot.id);
    this.onDelete(robot.id);
  }

  // ---- DTOs (shapes of the vendor's UserDto, GroupDto, RobotAccountDto) --------------------

  userDto(u: IdentityUser): Record<string, unknown> {
    return {
      id: u.id,
      userName: u.userName,
      email: u.email ?? null,
      emailConfirmed: false,
      name: u.name ?? null,
      surname: u.surname ?? null,
      displayName: u.displayName ?? null,
      creationTime: u.creationTime,
      lastModificationTime: u.lastModificationTime ?? null,
      lastLoginTime: null,
      groupIDs: this.groupIdsOf(u.id),
      legacyId: u.legacyId,
      isActive: u.isActive,
      bypassBasicAuthRestriction: false,
      type: u.type,
      invitationAccepted: false,
    };
  }

  groupDto(g: IdentityGroup, withMembers: boolean): Record<string, unknown> {
    const dto: Record<string, unknown> = {
      id: g.id,
      name: g.name,
      displayName: g.name,
      type: g.type,
      creationTime: g.creationTime,
      lastModificationTime: g.lastModificationTime ?? null,
    };
    if (withMembers) {
      dto.members = [...g.members].map((id) => {
        const u = this.users.get(id);
        if (u) {
          return {
            objectType: 'DirectoryUser',
            source: 'local',
            identifier: u.id,
            name: u.userName,
            email: u.email ?? null,
            displayName: u.displayName ?? null,
            firstName: u.name ?? null,
            lastName: u.surname ?? null,
            creationTime: u.creationTime,
          };
        }
        const r = this.robotAccount(id);
        return { objectType: 'DirectoryRobotUser', source: 'local', identifier: r.id, name: r.name, displayName: r.displayName ?? null };
      });
    }
    return dto;
  }

  robotAccountDto(r: RobotAccount): Record<string, unknown> {
    return {
      id: r.id,
      name: r.name,
      displayName: r.displayName ?? null,
      creationTime: r.creationTime,
      lastLoginTime: null,
      groupIds: this.groupIdsOf(r.id),
    };
  }
}
