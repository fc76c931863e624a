"""PADER: Paillier-secure SoReg between user and seller nodes (sans-IO roles, messages, simulation)."""

from recsys.pader.common import PaderSettings
from recsys.pader.messages import (SCORE, TRAIN, EncryptedItems, FriendShare, ItemRequest, MaskedErrors,
                                   MaskedGradient, MaskedProduct, PaderError, ReplayError, RevealedValues,
                                   SellerCatalogue)
from recsys.pader.seller import SellerRole
from recsys.pader.user import UserRole

__all__ = ["PaderSettings", "SellerRole", "UserRole", "SellerCatalogue", "FriendShare", "ItemRequest",
           "EncryptedItems", "MaskedErrors", "MaskedProduct", "MaskedGradient", "RevealedValues", "PaderError",
           "ReplayError", "TRAIN", "SCORE"]
