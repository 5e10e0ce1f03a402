"""Text transfer learning recipes (BERT via keras-hub): `sst2`, `text_folder`, `text_csv`. (Being written.)"""
