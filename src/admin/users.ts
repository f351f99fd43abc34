import type { Router } from 'express';
import { z } from 'zod';
import type { AppContext } from '../context.js';
import { body, query } from '../http/guard.js';
import { principalOf, requireService } from '../http/authenticate.js';
import { ListQuery } from '../http/pagination.js';
import { Email } from '../http/params.js';

const UserName = z.string().trim().min(1).max(256);
const AvatarUrl = z.url({ protocol: /^https?$/, message: 'must be an http(s) URL' }).max(2048);

const CreateUser = z.strictObject({ email: Email, name: UserName });
const UpdateUser = z
  .strictObject({
    name: UserName.nullable().optional(),
    avatarUrl: AvatarUrl.nullable().optional(),
    status: z.enum(['active', 'suspended']).optional(),
  })
  .refine((o) => Object.keys(o).length > 0, { message: 'give at least one of name, avatarUrl, status' });
const ListUsers = z.strictObject({ ...ListQuery.shape, email: z.string().trim().min(1).max(320).optional() });
const ListMemberships = z.strictObject(ListQuery.shape);

/**
 * Users are global accounts. The product's backend (service token) creates and
 * finds them; a user reads and edits only itself (anyone else is a 404).
 */
export function usersRoutes(router: Router, ctx: AppContext): void {
  const { users } = ctx.services;

  router.post('/users', async (req, res) => {
    requireService(res);
    const input = body(req, CreateUser);
    res.status(201).json(await users.create(principalOf(res), input));
  });

  router.get('/users', async (req, res) => {
    requireService(res);
    const page = query(req, ListUsers);
    res.json(await users.list(page));
  });

  router.get('/users/:userId', async (req, res) => {
    res.json(await users.get(principalOf(res), req.params.userId));
  });

  router.patch('/users/:userId', async (req, res) => {
    const principal = principalOf(res);
    await users.get(principal, req.params.userId); // 404 before validating a body about someone invisible
    const input = body(req, UpdateUser);
    res.json(await users.update(principal, req.params.userId, input));
  });

  router.get('/users/:userId/memberships', async (req, res) => {
    const page = query(req, ListMemberships);
    res.json(await users.memberships(principalOf(res), req.params.userId, page));
  });
}
