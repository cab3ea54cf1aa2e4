"""Synthetic masks: draw a face mask, or something over the mouth that is not one, from five landmarks.

The public mask datasets were made this way (a mask picture pasted along
facial landmarks), but only ever with the mask worn correctly. This package
draws masks in three shapes, many colours and prints, shaded by the photo's
own light, worn correctly or wrongly (below the nose, off the mouth, on the
chin), and, for faces without a mask, a hand, a phone, a cup or a beard over
the lower face; it turns the face or cuts it by the picture's edge, and
writes the class-folder dataset of it all.

- geometry: the face's own axes from its landmarks, and where a mask lies on them
- rendering: drawn shapes lit, blurred and blended as the photo would show them
- masks: mask styles, and drawing a mask with its ear loops
- negatives: hands, phones, cups and beards, and choosing what fits in the photo
- views: the face turned, or cut by the picture's edge
- dataset: the images drawn per face, written as a dataset, or a grid picture of them

Every random choice comes from the numpy Generator passed in, so a seed
gives the same pixels; no function changes the image it is given.
"""
