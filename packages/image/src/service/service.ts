import { NotImplementedError } from '@berth/oci-spec';
import type { ImageService, ImageServiceOptions } from './types.js';

/** Opens (creating) the image service rooted at `options.root`. */
export async function openImageService(options: ImageServiceOptions): Promise<ImageService> {
  void options;
  throw new NotImplementedError('openImageService');
}
