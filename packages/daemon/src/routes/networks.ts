import type { NetworkFilters, VolumeFilters } from '@berth/runtime';
import type { Router } from '../api/router.js';
import { boolValue, parseFilters, type Filters } from '../api/query.js';
import { validateNetworkConnect, validateNetworkCreate, validateNetworkDisconnect, validateVolumeCreate } from '../api/schemas.js';
import { ConflictError } from '../errors.js';
import type { DaemonServices } from './context.js';

function networkFilters(f: Filters): NetworkFilters {
  f.validate(['name', 'id', 'driver', 'label', 'type', 'dangling', 'scope', 'until']);
  const out: NetworkFilters = {};
  for (const key of ['name', 'id', 'driver', 'label', 'type', 'dangling'] as const) if (f.has(key)) out[key] = f.get(key);
  return out;
}

function volumeFilters(f: Filters, accepted: readonly string[]): VolumeFilters {
  f.validate(accepted);
  const out: VolumeFilters = {};
  for (const key of ['name', 'label', 'dangling', 'driver', 'all'] as const) if (f.has(key)) out[key] = f.get(key);
  return out;
}

export function registerNetworkRoutes(router: Router, s: DaemonServices): void {
  router.add('GET', '/networks', (ctx) => {
    ctx.sendJson(200, s.networks.list(networkFilters(parseFilters(ctx.query.get('filters')))));
  });

  router.add('POST', '/networks/create', async (ctx) => {
    const body = await ctx.json(validateNetworkCreate, { required: true });
    const created = await s.networks.create({
      name: body.Name,
      ...(body.Driver ? { driver: body.Driver } : {}),
      internal: body.Internal ?? false,
      attachable: body.Attachable ?? false,
      ...(typeof body.EnableIPv6 === 'boolean' ? { enableIPv6: body.EnableIPv6 } : {}),
      ...(body.IPAM
        ? {
            ipam: {
              ...(body.IPAM.Driver ? { Driver: body.IPAM.Driver } : {}),
              Config: (body.IPAM.Config ?? []).map((c) => ({
                ...(c.Subnet ? { Subnet: c.Subnet } : {}),
                ...(c.IPRange ? { IPRange: c.IPRange } : {}),
                ...(c.Gateway ? { Gateway: c.Gateway } : {}),
              })),
              ...(body.IPAM.Options ? { Options: body.IPAM.Options } : {}),
            },
          }
        : {}),
      labels: body.Labels ?? {},
      options: body.Options ?? {},
    });
    s.events.publish('network', 'create', created.Id, { name: created.Name, type: created.Driver });
    ctx.sendJson(201, { Id: created.Id, Warning: '' });
  });

  router.add('POST', '/networks/prune', async (ctx) => {
    const f = parseFilters(ctx.query.get('filters'));
    f.validate(['label', 'until']);
    const deleted = await s.networks.prune(f.has('label') ? { label: f.get('label') } : {});
    for (const id of deleted) s.events.publish('network', 'destroy', id, {});
    ctx.sendJson(200, { NetworksDeleted: deleted });
  });

  router.add('GET', '/networks/:id', (ctx) => {
    ctx.sendJson(200, s.networks.inspect(ctx.param('id')));
  });

  router.add('DELETE', '/networks/:id', async (ctx) => {
    const net = s.networks.inspect(ctx.param('id'));
    await s.networks.remove(net.Id);
    s.events.publish('network', 'destroy', net.Id, { name: net.Name, type: net.Driver });
    ctx.noContent();
  });

  router.add('POST', '/networks/:id/connect', async (ctx) => {
    const body = await ctx.json(validateNetworkConnect, { required: true });
    const net = s.networks.inspect(ctx.param('id'));
    const record = s.containers.store.get(body.Container);
    const endpoints = (record.NetworkingConfig.EndpointsConfig ??= {});
    if (endpoints[net.Name] && record.State.Running) {
      throw new ConflictError(`endpoint with name ${record.Name.slice(1)} already exists in network ${net.Name}`);
    }
    const ep = body.EndpointConfig ?? {};
    if (record.State.Running) {
      await s.networks.connect(net.Id, record.Id, {
        ...(ep.Aliases ? { Aliases: ep.Aliases } : {}),
        ...(ep.IPAMConfig ? { IPAMConfig: { ...(ep.IPAMConfig.IPv4Address ? { IPv4Address: ep.IPAMConfig.IPv4Address } : {}), ...(ep.IPAMConfig.IPv6Address ? { IPv6Address: ep.IPAMConfig.IPv6Address } : {}) } } : {}),
        ...(ep.MacAddress ? { MacAddress: ep.MacAddress } : {}),
      });
      record.NetworkSettings = s.networks.containerSettings(record.Id) ?? record.NetworkSettings;
    }
    endpoints[net.Name] = ep;
    await s.containers.store.save(record);
    s.events.publish('network', 'connect', net.Id, { name: net.Name, type: net.Driver, container: record.Id });
    ctx.send(200);
  });

  router.add('POST', '/networks/:id/disconnect', async (ctx) => {
    const body = await ctx.json(validateNetworkDisconnect, { required: true });
    const net = s.networks.inspect(ctx.param('id'));
    const record = s.containers.store.get(body.Container);
    if (record.State.Running) {
      await s.networks.disconnect(net.Id, record.Id, { force: body.Force ?? false });
      record.NetworkSettings = s.networks.containerSettings(record.Id) ?? record.NetworkSettings;
    }
    const endpoints = record.NetworkingConfig.EndpointsConfig ?? {};
    delete endpoints[net.Name];
    delete endpoints[net.Id];
    await s.containers.store.save(record);
    s.events.publish('network', 'disconnect', net.Id, { name: net.Name, type: net.Driver, container: record.Id });
    ctx.send(200);
  });

  router.add('GET', '/volumes', async (ctx) => {
    const filters = volumeFilters(parseFilters(ctx.query.get('filters')), ['name', 'label', 'dangling', 'driver']);
    ctx.sendJson(200, { Volumes: await s.volumes.list(filters), Warnings: [] });
  });

  router.add('POST', '/volumes/create', async (ctx) => {
    const body = await ctx.json(validateVolumeCreate);
    const volume = await s.volumes.create({
      ...(body.Name ? { name: body.Name } : {}),
      ...(body.Driver ? { driver: body.Driver } : {}),
      labels: body.Labels ?? {},
      driverOpts: body.DriverOpts ?? {},
    });
    s.events.publish('volume', 'create', volume.Name, { driver: volume.Driver });
    ctx.sendJson(201, volume);
  });

  router.add('POST', '/volumes/prune', async (ctx) => {
    const f = volumeFilters(parseFilters(ctx.query.get('filters')), ['label', 'all']);
    const result = await s.volumes.prune({ ...(f.label ? { label: f.label } : {}), ...(f.all ? { all: f.all } : {}) });
    for (const name of result.VolumesDeleted) s.events.publish('volume', 'destroy', name, { driver: 'local' });
    ctx.sendJson(200, result);
  });

  router.add('GET', '/volumes/:name', async (ctx) => {
    ctx.sendJson(200, await s.volumes.inspect(ctx.param('name')));
  });

  router.add('DELETE', '/volumes/:name', async (ctx) => {
    const name = ctx.param('name');
    await s.volumes.remove(name, { force: boolValue(ctx.query, 'force') });
    s.events.publish('volume', 'destroy', name, { driver: 'local' });
    ctx.noContent();
  });
}
