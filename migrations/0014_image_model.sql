-- An image's CLEAN model (Jy/pixel) is kept beside it: forced photometry rebuilds each source's dirty image
-- from the residual and the nearby components (science/dirty_flux.py). Older images have none (NULL).

ALTER TABLE products.images ADD COLUMN model_path text;
