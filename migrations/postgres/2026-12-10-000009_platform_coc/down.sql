DROP TABLE platform_coc_acceptances;
DROP TABLE platform_cocs;
