/**
 * The REST API of the aimodel-kernel server extension (`aimodel/api/...`), authenticated
 * through the Jupyter server connection like every JupyterLab request. The bodies' types and
 * their runtime checks are in `apitypes.ts` (the TypeScript side of `api.v1.schema.json`).
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import type { IDiffResponse, IModelsResponse } from './apitypes';

export type {
  IDiffResponse,
  IErrorBody,
  IModelInfo,
  IModelsResponse,
  IStoreInfo,
  IVersionInfo
} from './apitypes';

/** The server extension's URL namespace. */
export const API_NAMESPACE = 'aimodel/api';

/**
 * Call the server extension and parse its JSON answer.
 *
 * @param endPoint - Path below `aimodel/api`, with its query string.
 * @param init - Request options (method, body...).
 * @param settings - Server connection settings (the page's by default).
 * @returns The response body as JSON.
 * @throws ServerConnection.ResponseError with the server's `message` on a 4xx/5xx answer;
 *   ServerConnection.NetworkError when the server cannot be reached.
 */
export async function requestAPI<T>(
  endPoint: string,
  init: RequestInit = {},
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<T> {
  const [path, query] = endPoint.split('?', 2);
  const url =
    URLExt.join(settings.baseUrl, API_NAMESPACE, path) + (query ? `?${query}` : '');
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new ServerConnection.NetworkError(error as TypeError);
  }
  const text = await response.text();
  let data: any = text;
  if (text.length > 0) {
    try {
      data = JSON.parse(text);
    } catch {
      // not JSON: keep the text (a proxy's error page, say)
    }
  }
  if (!response.ok) {
    const message =
      typeof data === 'object' && data && typeof data.message === 'string'
        ? data.message
        : `${response.status} ${response.statusText}`.trim();
    throw new ServerConnection.ResponseError(response, message);
  }
  return data as T;
}

function query(params: Record<string, string>): string {
  return new URLSearchParams(params).toString();
}

/** The models and versions of the store used by notebooks in `dir` ('' for the root). */
export function fetchModels(
  dir: string,
  settings?: ServerConnection.ISettings
): Promise<IModelsResponse> {
  return requestAPI<IModelsResponse>(`models?${query({ dir })}`, {}, settings);
}

/** The diff report of two versions (`name/1`, `name@champion`) of the store of `dir`. */
export function fetchDiff(
  dir: string,
  a: string,
  b: string,
  settings?: ServerConnection.ISettings
): Promise<IDiffResponse> {
  return requestAPI<IDiffResponse>(`diff?${query({ dir, a, b })}`, {}, settings);
}
