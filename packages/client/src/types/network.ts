import type { EndpointSettings, Labels } from './container.js';

export interface IpamConfig {
  Subnet?: string;
  IPRange?: string;
  Gateway?: string;
  AuxiliaryAddresses?: Record<string, string>;
}

/** `GET /networks/{id}` and items of `GET /networks`. */
export interface NetworkInspect {
  Name: string;
  Id: string;
  Created: string;
  Scope: string;
  Driver: string;
  EnableIPv6: boolean;
  IPAM: { Driver: string; Options?: Record<string, string> | null; Config: IpamConfig[] | null };
  Internal: boolean;
  Attachable: boolean;
  Ingress: boolean;
  Containers?: Record<string, { Name: string; EndpointID: string; MacAddress: string; IPv4Address: string; IPv6Address: string }>;
  Options: Record<string, string> | null;
  Labels: Labels | null;
}

export interface NetworkCreateBody {
  Name: string;
  CheckDuplicate?: boolean;
  Driver?: string;
  Internal?: boolean;
  Attachable?: boolean;
  Ingress?: boolean;
  EnableIPv6?: boolean;
  IPAM?: { Driver?: string; Config?: IpamConfig[]; Options?: Record<string, string> };
  Options?: Record<string, string>;
  Labels?: Labels;
}

export interface NetworkCreateResponse {
  Id: string;
  Warning?: string;
}

export interface NetworkConnectBody {
  Container: string;
  EndpointConfig?: EndpointSettings;
}

export interface NetworkPruneResponse {
  NetworksDeleted: string[] | null;
}
