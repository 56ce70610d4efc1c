/* The compiled models, as C arrays written by `edgegen export c-array` (the Makefile writes
 * build/<name>.c from models/; each array is 16-byte aligned). */
#ifndef MODELS_H
#define MODELS_H

extern const unsigned char pixelcnn_egm[];
extern const unsigned int pixelcnn_egm_len;
extern const unsigned char background_egm[];
extern const unsigned int background_egm_len;
extern const unsigned char vae_encoder_egm[];
extern const unsigned int vae_encoder_egm_len;
extern const unsigned char vae_decoder_egm[];
extern const unsigned int vae_decoder_egm_len;
extern const unsigned char classifier_egm[];
extern const unsigned int classifier_egm_len;

#endif
